"""Functions a local `lambda` target can name, since moto cannot run real Lambda code here."""

from __future__ import annotations

from typing import Any

# Lambda target name -> "module:attribute" of the local callable that stands in for it.
SAMPLE_FUNCTIONS: dict[str, str] = {
    "echo": "taskengine_local.samples:echo",
    "fail": "taskengine_local.samples:fail",
}


class SampleFunctionError(RuntimeError):
    """What `fail` raises: an unhandled function error, retryable like any other."""


def echo(event: Any, context: Any = None) -> Any:
    return event


def fail(event: Any, context: Any = None) -> Any:
    raise SampleFunctionError("the sample function 'fail' always fails")


def functions_setting(functions: dict[str, str]) -> str:
    """The TASKENGINE_LOCAL_FUNCTIONS value: comma-separated name=module:attribute pairs."""
    return ",".join(f"{name}={path}" for name, path in sorted(functions.items()))
