"""A readable console for the local stack: one line per task transition.

The engine logs every state change as a structured "task transition" record; the Lambda
JSON log lines stay off the console unless the stack runs verbose.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Metrics
from rich.console import Console
from rich.markup import escape

TRANSITION_MESSAGE = "task transition"
ENGINE_LOGGER = "taskengine"
LOCAL_LOGGER = "taskengine_local"

_STATUS_STYLES = {
    "PENDING": "white",
    "RUNNING": "cyan",
    "RETRY_SCHEDULED": "yellow",
    "COMPLETED": "green",
    "DEAD_LETTER": "bold red",
    "CANCELLED": "magenta",
}
_STATUS_WIDTH = max(len(status) for status in _STATUS_STYLES)


def format_transition(record: logging.LogRecord) -> str:
    """One line per transition, e.g.

    `18:40:01  <task id>  RETRY_SCHEDULED  attempt 2  retryable_failure (HTTP 503)  next in 2.1s`
    """
    fields: dict[str, Any] = record.__dict__
    parts = [
        datetime.fromtimestamp(record.created).strftime("%H:%M:%S"),
        str(fields.get("task_id", "?")),
        str(fields.get("status", "?")).ljust(_STATUS_WIDTH),
        f"attempt {fields.get('attempt', '?')}",
    ]
    if fields.get("generation"):
        parts.append(f"gen {fields['generation']}")
    outcome, reason = fields.get("outcome"), fields.get("reason")
    if outcome and reason:
        parts.append(f"{outcome} ({reason})")
    elif outcome or reason:
        parts.append(str(outcome or reason))
    if fields.get("delay_ms") is not None:
        parts.append(f"next in {int(fields['delay_ms']) / 1000:.1f}s")
    return "  ".join(parts)


class ConsoleHandler(logging.Handler):
    """Prints transitions always, other records only from WARNING up."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.INFO)
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.getMessage() == TRANSITION_MESSAGE:
                self._print_transition(record)
            elif record.levelno >= logging.WARNING:
                self._print_problem(record)
        except Exception:  # noqa: BLE001 - logging must never break the code that logs
            self.handleError(record)

    def _print_transition(self, record: logging.LogRecord) -> None:
        style = _STATUS_STYLES.get(str(getattr(record, "status", "")), "white")
        line = f"[{style}]{escape(format_transition(record))}[/]"
        # soft_wrap: a transition stays one line even when the output is not a terminal.
        self._console.print(line, highlight=False, soft_wrap=True)

    def _print_problem(self, record: logging.LogRecord) -> None:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        task = getattr(record, "task_id", None)
        line = f"{when}  {record.levelname}  {record.getMessage()}"
        if task:
            line += f"  task {task}"
        self._console.print(escape(line), style="red", highlight=False, soft_wrap=True)
        if record.exc_info:
            self._console.print(escape(logging.Formatter().formatException(record.exc_info)))


def install(console: Console, *, verbose: bool) -> ConsoleHandler:
    """Attach the readable handler; mute the engine's JSON handler unless verbose."""
    handler = ConsoleHandler(console)
    for name in (ENGINE_LOGGER, LOCAL_LOGGER):
        target = logging.getLogger(name)
        target.addHandler(handler)
        if target.level == logging.NOTSET or target.level > logging.INFO:
            target.setLevel(logging.INFO)
    json_handler = getattr(logging.getLogger(ENGINE_LOGGER), "powertools_handler", None)
    if isinstance(json_handler, logging.Handler) and not verbose:
        json_handler.setLevel(logging.CRITICAL + 1)
    return handler


def quiet_moto(*, verbose: bool) -> None:
    """The moto server logs every AWS request it serves; that would drown everything else."""
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.ERROR)


def uninstall(handler: ConsoleHandler) -> None:
    for name in (ENGINE_LOGGER, LOCAL_LOGGER):
        logging.getLogger(name).removeHandler(handler)


def discard_metrics() -> None:
    """Drop the metric values an invocation recorded.

    With POWERTOOLS_METRICS_DISABLED, Powertools 3.x skips the flush at the end of an
    invocation but never clears what was recorded, so the values pile up until its
    100-value limit prints them as EMF anyway. Clearing after each invocation keeps the
    console quiet; the values are discarded on purpose, metrics being off.
    """
    Metrics().clear_metrics()
