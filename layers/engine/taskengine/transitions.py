"""Conditional updates for each state change of the lifecycle.

Every change names the state it expects, so a racing worker, scheduler or operator loses
cleanly (the write is refused) instead of overwriting someone else's decision.
"""

from __future__ import annotations

from datetime import datetime

from taskengine.models import TaskState, TaskStatus
from taskengine.store import Update

_LEASE_FIELDS = ["lease_until", "lease_token", "running_since"]


def claim(
    *,
    generation: int,
    attempt: int,
    now: datetime,
    latest_due: datetime,
    lease_until: datetime,
    lease_token: str,
) -> Update:
    """PENDING/RETRY_SCHEDULED -> RUNNING for exactly this attempt of this generation.

    The due time is left as it is (the run time plus the redispatch delay): moving it to the
    lease's end would rewrite the due index on every attempt. The scheduler meets a running
    task then, and pushes its due time to the lease's end only if it is still running.
    """
    return Update(
        sets={
            "status": TaskStatus.RUNNING.value,
            "attempt_count": attempt,
            "lease_until": lease_until,
            "lease_token": lease_token,
            "running_since": now,
            "updated_at": now,
            "dispatch_count": 0,
        },
        sets_if_absent={"first_attempt_at": now},
        conditions=[
            "#generation = :generation",
            "#attempt_count = :previous",
            "#status IN (:pending, :retry)",
            "#next_attempt_at <= :latest",
        ],
        values={
            ":generation": generation,
            ":previous": attempt - 1,
            ":pending": TaskStatus.PENDING.value,
            ":retry": TaskStatus.RETRY_SCHEDULED.value,
            ":latest": latest_due,
        },
    )


def schedule_retry(
    *,
    now: datetime,
    next_attempt_at: datetime,
    due_at: datetime,
    dispatched: bool,
    last_error: str | None,
) -> Update:
    return Update(
        sets={
            "status": TaskStatus.RETRY_SCHEDULED.value,
            "updated_at": now,
            "next_attempt_at": next_attempt_at,
            "due_at": due_at,
            "dispatch_count": 1 if dispatched else 0,
            "last_error": last_error,
        },
        removes=list(_LEASE_FIELDS),
    )


def defer(*, attempt: int, now: datetime, next_attempt_at: datetime, due_at: datetime) -> Update:
    """RUNNING -> RETRY_SCHEDULED without spending the attempt: it was never started."""
    return Update(
        sets={
            "status": TaskStatus.RETRY_SCHEDULED.value,
            "attempt_count": attempt - 1,
            "updated_at": now,
            "next_attempt_at": next_attempt_at,
            "due_at": due_at,
            "dispatch_count": 1,
        },
        removes=list(_LEASE_FIELDS),
    )


def finish(*, status: TaskStatus, now: datetime, last_error: str | None, expires_at: int) -> Update:
    """RUNNING (or any live state) -> a terminal state; leaves the due index."""
    update = Update(
        sets={"status": status.value, "updated_at": now, "expires_at": expires_at},
        removes=[*_LEASE_FIELDS, "due_at", "next_attempt_at"],
    )
    if last_error is not None:
        update.sets["last_error"] = last_error
    return update


def held(update: Update, lease_token: str) -> Update:
    """Only the worker holding the lease may record the attempt's result."""
    update.conditions += ["#status = :running", "#lease_token = :token"]
    update.values.update({":running": TaskStatus.RUNNING.value, ":token": lease_token})
    return update


def at_version(update: Update, state: TaskState) -> Update:
    """Only if nobody changed the task since `state` was read."""
    update.conditions.append("#version = :version")
    update.values[":version"] = state.version
    return update


def look_again_at(moment: datetime) -> Update:
    """When the scheduler should next look at a task (a running one: when its lease ends)."""
    return Update(sets={"due_at": moment})


def dispatched(*, due_at: datetime, dispatch_count: int) -> Update:
    return Update(sets={"due_at": due_at, "dispatch_count": dispatch_count})


def undispatched(now: datetime) -> Update:
    """After a failed send: make the task due again so the next scheduler run sends it."""
    return Update(
        sets={"due_at": now, "dispatch_count": 0},
        conditions=["attribute_exists(#due_at)"],
        bump_version=False,
    )


def retry_now(*, now: datetime, due_at: datetime) -> Update:
    return Update(
        sets={"next_attempt_at": now, "updated_at": now, "due_at": due_at, "dispatch_count": 1},
        conditions=["#status = :retry"],
        values={":retry": TaskStatus.RETRY_SCHEDULED.value},
    )


def replay(*, state: TaskState, now: datetime, due_at: datetime) -> Update:
    return Update(
        sets={
            "status": TaskStatus.PENDING.value,
            "generation": state.generation + 1,
            "attempt_count": 0,
            "updated_at": now,
            "next_attempt_at": now,
            "due_at": due_at,
            "dispatch_count": 1,
        },
        removes=[*_LEASE_FIELDS, "first_attempt_at", "last_error", "expires_at"],
        conditions=["#status IN (:dead, :done)"],
        values={
            ":dead": TaskStatus.DEAD_LETTER.value,
            ":done": TaskStatus.COMPLETED.value,
        },
    )


def cancel(*, now: datetime, expires_at: int) -> Update:
    update = finish(status=TaskStatus.CANCELLED, now=now, last_error=None, expires_at=expires_at)
    update.conditions.append("#status IN (:pending, :running, :retry)")
    update.values.update(
        {
            ":pending": TaskStatus.PENDING.value,
            ":running": TaskStatus.RUNNING.value,
            ":retry": TaskStatus.RETRY_SCHEDULED.value,
        }
    )
    return update
