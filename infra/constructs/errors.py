"""Errors raised while the engine's constructs are being defined (i.e. at synth time)."""

from __future__ import annotations


class EngineConfigError(ValueError):
    """A construct property, or a combination of them, that would deploy a broken engine."""
