"""Sending work after a state change: the next attempt's message, or a dead letter."""

from __future__ import annotations

from datetime import datetime

from taskengine import transitions
from taskengine.engine import Engine
from taskengine.errors import DependencyError, StaleStateError
from taskengine.models import DeadLetterMessage, TaskState, WorkMessage
from taskengine.names import Metric
from taskengine.observability import count, logger
from taskengine.queue import sqs_delay_seconds


def next_message(state: TaskState) -> WorkMessage:
    return WorkMessage(
        task_id=state.task_id, generation=state.generation, attempt=state.attempt_count + 1
    )


def enqueue(engine: Engine, state: TaskState, run_at: datetime) -> None:
    """Send the task's next attempt; on failure leave it due so the scheduler sends it."""
    now = engine.clock()
    message = next_message(state)
    try:
        engine.queue.send(message, sqs_delay_seconds((run_at - now).total_seconds()))
    except DependencyError:
        count(Metric.ENQUEUE_FAILURES)
        logger.warning(
            "enqueue failed; the scheduler will dispatch the task",
            extra={"task_id": state.task_id, "attempt": message.attempt},
        )
        try:
            engine.store.update_state(state.task_id, transitions.undispatched(now))
        except (DependencyError, StaleStateError):
            # The due time written with the task still brings the scheduler to it, later.
            logger.warning(
                "could not mark task due after enqueue failure", extra={"task_id": state.task_id}
            )


def dead_letter(engine: Engine, state: TaskState, reason: str) -> None:
    """Put a dead-lettered task's message in the DLQ, where operators and alarms look."""
    count(Metric.DEAD_LETTERS)
    logger.warning(
        "task dead-lettered",
        extra={"task_id": state.task_id, "attempt": state.attempt_count, "reason": reason},
    )
    try:
        engine.queue.send_dead_letter(
            DeadLetterMessage(task_id=state.task_id, generation=state.generation, reason=reason)
        )
    except DependencyError:
        # The task record says DEAD_LETTER either way; the listing API still finds it.
        logger.exception("dead-letter queue send failed", extra={"task_id": state.task_id})
