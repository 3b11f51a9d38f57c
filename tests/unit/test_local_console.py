"""The dev console line for a task transition, and the scheduler's EventBridge event."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime

from rich.console import Console

from taskengine_local.console import ConsoleHandler, format_transition
from taskengine_local.scheduler import scheduled_event


def _record(message: str, level: int = logging.INFO, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord("taskengine", level, __file__, 1, message, None, None)
    record.__dict__.update(fields)
    return record


def test_a_retry_transition_reads_as_one_line() -> None:
    # Given a retry transition record as the engine logs it
    record = _record(
        "task transition",
        task_id="01JFTASK",
        status="RETRY_SCHEDULED",
        generation=0,
        attempt=2,
        outcome="retryable_failure",
        reason="HTTP 503",
        delay_ms=2100,
    )

    # When it is formatted
    line = format_transition(record)

    # Then it names the task, status, attempt, outcome, reason and the wait
    assert "01JFTASK  RETRY_SCHEDULED" in line
    assert "attempt 2  retryable_failure (HTTP 503)  next in 2.1s" in line
    assert "gen" not in line


def test_a_replayed_generation_is_shown() -> None:
    record = _record("task transition", task_id="t", status="PENDING", generation=1, attempt=0)
    assert "gen 1" in format_transition(record)


def test_the_console_prints_transitions_and_problems_only() -> None:
    # Given a console handler writing to a buffer
    buffer = io.StringIO()
    handler = ConsoleHandler(Console(file=buffer, width=200))

    # When a transition, a chatty info record and a warning are emitted
    handler.emit(_record("task transition", task_id="t1", status="COMPLETED", attempt=1))
    handler.emit(_record("claimed attempt", task_id="t1"))
    handler.emit(_record("task dead-lettered", logging.WARNING, task_id="t2"))

    # Then the transition and the warning are printed, the info chatter is not
    output = buffer.getvalue()
    assert "t1  COMPLETED" in output
    assert "claimed attempt" not in output
    assert "WARNING  task dead-lettered  task t2" in output


def test_the_scheduler_event_looks_like_an_eventbridge_scheduled_event() -> None:
    # Given / When
    event = scheduled_event(datetime(2026, 12, 3, 18, 40, 1, tzinfo=UTC))

    # Then
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-12-03T18:40:01Z"
    assert event["resources"][0].startswith("arn:aws:events:us-east-1:")
    assert event["detail"] == {}
