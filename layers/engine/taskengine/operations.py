"""Reading tasks and the operator actions: cancel, retry now, replay, list, stats, health."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from ulid import ULID

from taskengine import transitions
from taskengine.engine import Engine
from taskengine.errors import (
    ConflictError,
    DependencyError,
    InvalidRequestError,
    StaleStateError,
    TaskNotFoundError,
)
from taskengine.models import (
    AdminAction,
    HealthView,
    StatsView,
    TaskPage,
    TaskState,
    TaskStatus,
    TaskSummary,
    TaskView,
)
from taskengine.observability import log_transition
from taskengine.outbox import enqueue
from taskengine.store import TaskRecord, Update

ActionName = Literal["cancel", "retry", "replay"]
MAX_PAGE = 100


def summary(state: TaskState) -> TaskSummary:
    return TaskSummary(
        task_id=state.task_id,
        tenant=state.tenant,
        status=state.status,
        attempt_count=state.attempt_count,
        generation=state.generation,
        created_at=state.created_at,
        updated_at=state.updated_at,
        next_attempt_at=state.next_attempt_at,
        last_error=state.last_error,
    )


def view(record: TaskRecord) -> TaskView:
    state = record.state
    return TaskView(
        **summary(state).model_dump(),
        target=record.spec.target,
        retry=record.spec.retry,
        idempotency_key=state.idempotency_key,
        attempts=[a for a in record.attempts if a.generation == state.generation],
        actions=record.actions,
    )


def get_task(engine: Engine, task_id: str, tenant: str | None) -> TaskRecord:
    """The task, if it exists and (when tenant is given) belongs to that tenant."""
    canonical = _canonical_task_id(task_id)
    record = engine.store.load(canonical) if canonical else None
    if record is None or (tenant is not None and record.state.tenant != tenant):
        raise TaskNotFoundError(task_id)
    return record


def _canonical_task_id(task_id: str) -> str | None:
    """Task ids are ULIDs, which read the same in either case; None if it is not one."""
    try:
        return str(ULID.from_str(task_id.upper()))
    except ValueError:
        return None


def _apply(
    engine: Engine,
    record: TaskRecord,
    *,
    action: ActionName,
    actor: str,
    reason: str | None,
    action_key: str | None,
    build: Callable[[TaskState, datetime], Update],
    allowed: frozenset[TaskStatus],
) -> TaskRecord:
    """Apply an admin action once: a repeated request with the same key changes nothing more."""
    now = engine.clock()
    state = record.state
    action_id = f"key:{action}:{action_key}" if action_key else f"{now:%Y%m%dT%H%M%S}:{ULID()}"
    earlier = engine.store.get_action(state.task_id, action_id) if action_key else None
    if earlier is not None:
        _same_action_or_conflict(earlier, action, actor, reason)
        return get_task(engine, state.task_id, None)
    if state.status not in allowed:
        raise ConflictError(
            f"cannot {action} a task in status {state.status.value}", field="status"
        )

    entry = AdminAction(
        action=action, actor=actor, at=now, reason=reason, generation=state.generation
    )
    update = transitions.at_version(build(state, now), state)
    try:
        applied = engine.store.apply_action(
            state.task_id, update, entry, action_id, now + timedelta(days=365)
        )
    except StaleStateError as error:
        raise ConflictError(
            "the task changed while the action was applied; read it and try again", field="status"
        ) from error
    if not applied:
        # A concurrent request with this key recorded its action first.
        winner = engine.store.get_action(state.task_id, action_id)
        if winner is not None:
            _same_action_or_conflict(winner, action, actor, reason)
    updated = get_task(engine, state.task_id, None)
    if applied:
        log_transition(updated.state, reason=f"{action} by {actor!r}")
    return updated


def _same_action_or_conflict(
    earlier: AdminAction, action: ActionName, actor: str, reason: str | None
) -> None:
    """A keyed action repeated as it was is a retry; with another caller or reason, a 409."""
    if (earlier.actor, earlier.reason) != (actor, reason):
        raise ConflictError(
            f"this Idempotency-Key already named a {action} by another caller or with "
            "another reason",
            field="header.Idempotency-Key",
        )


def cancel(
    engine: Engine,
    task_id: str,
    *,
    tenant: str | None,
    actor: str,
    reason: str | None,
    action_key: str | None,
) -> TaskRecord:
    record = get_task(engine, task_id, tenant)
    return _apply(
        engine,
        record,
        action="cancel",
        actor=actor,
        reason=reason,
        action_key=action_key,
        build=lambda _, now: transitions.cancel(
            now=now, expires_at=engine.store.terminal_expiry(now)
        ),
        allowed=frozenset({TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.RETRY_SCHEDULED}),
    )


def retry_now(
    engine: Engine, task_id: str, *, actor: str, reason: str | None, action_key: str | None
) -> TaskRecord:
    redispatch = timedelta(seconds=engine.settings.redispatch_after_seconds)
    record = _apply(
        engine,
        get_task(engine, task_id, None),
        action="retry",
        actor=actor,
        reason=reason,
        action_key=action_key,
        build=lambda _, now: transitions.retry_now(now=now, due_at=now + redispatch),
        allowed=frozenset({TaskStatus.RETRY_SCHEDULED}),
    )
    if record.state.status is TaskStatus.RETRY_SCHEDULED:
        enqueue(engine, record.state, engine.clock())
    return record


def replay(
    engine: Engine, task_id: str, *, actor: str, reason: str, action_key: str | None
) -> TaskRecord:
    settings = engine.settings
    redispatch = timedelta(seconds=settings.redispatch_after_seconds)
    before = get_task(engine, task_id, None)
    record = _apply(
        engine,
        before,
        action="replay",
        actor=actor,
        reason=reason,
        action_key=action_key,
        build=lambda state, now: transitions.replay(state=state, now=now, due_at=now + redispatch),
        allowed=frozenset({TaskStatus.DEAD_LETTER, TaskStatus.COMPLETED}),
    )
    if record.state.generation > before.state.generation:
        now = engine.clock()
        keep = timedelta(
            seconds=record.spec.retry.max_retry_duration_seconds,
            days=settings.task_retention_days,
        )
        engine.store.extend_spec_expiry(record.state.task_id, now + keep)
        if record.state.status is TaskStatus.PENDING:
            enqueue(engine, record.state, now)
    return record


def encode_cursor(task_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": task_id}).encode()).decode()


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        before = _canonical_task_id(data["before"])
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        raise InvalidRequestError("not a cursor returned by this API", field="cursor") from error
    if before is None:
        raise InvalidRequestError("not a cursor returned by this API", field="cursor")
    return before


def list_tasks(
    engine: Engine, *, status: TaskStatus | None, limit: int, cursor: str | None
) -> TaskPage:
    """Newest first. Without a status, pages merge every status partition by task id."""
    before = decode_cursor(cursor)
    statuses = [status] if status else list(TaskStatus)
    latest: dict[str, TaskState] = {}
    for each in statuses:
        # One more than a page tells whether another page exists. A task that changes status
        # between two of these queries is read in both: the newer version stands.
        for state in engine.store.list_by_status(each, before, limit + 1):
            seen = latest.get(state.task_id)
            if seen is None or state.version > seen.version:
                latest[state.task_id] = state
    states = sorted(latest.values(), key=lambda state: state.task_id, reverse=True)
    page = states[:limit]
    more = len(states) > limit
    next_cursor = encode_cursor(page[-1].task_id) if page and more else None
    return TaskPage(items=[summary(state) for state in page], next_cursor=next_cursor)


def stats(engine: Engine) -> StatsView:
    counts = {status: engine.store.count_by_status(status) for status in TaskStatus}
    return StatsView(counts=counts, queues=engine.queue.depths())


def health(engine: Engine) -> HealthView:
    checks: dict[str, str] = {}
    for name, probe in (("dynamodb", engine.store.ping), ("sqs", engine.queue.depths)):
        try:
            probe()
            checks[name] = "ok"
        except DependencyError as error:
            checks[name] = f"error: {error}"
    checks["redis"] = "ok" if engine.guard.ping() else "unreachable"
    if checks["dynamodb"] != "ok" or checks["sqs"] != "ok":
        return HealthView(status="down", checks=checks)
    if checks["redis"] != "ok":
        return HealthView(status="degraded", checks=checks)
    return HealthView(status="ok", checks=checks)
