"""Settings refuse combinations that would make the scheduler misbehave."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from taskengine.settings import EngineSettings


def test_a_lookahead_reaching_the_redispatch_delay_is_refused() -> None:
    # A just-sent task would be due again inside every scheduler run's window.
    with pytest.raises(ValidationError, match="dispatch_lookahead_seconds"):
        EngineSettings(dispatch_lookahead_seconds=60, redispatch_after_seconds=60)


def test_the_default_windows_are_consistent() -> None:
    settings = EngineSettings()

    assert settings.dispatch_lookahead_seconds < settings.redispatch_after_seconds
    assert settings.dispatch_lookahead_seconds <= 900
