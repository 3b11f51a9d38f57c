"""The scheduler's work: send what is due, recover attempts whose worker died."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from taskengine import transitions
from taskengine.engine import Engine
from taskengine.errors import DependencyError, StaleStateError
from taskengine.models import AttemptOutcome, AttemptRecord, TaskState, TaskStatus
from taskengine.names import Metric
from taskengine.observability import count, log_transition, logger, milliseconds
from taskengine.outbox import dead_letter, next_message
from taskengine.queue import Outgoing, sqs_delay_seconds
from taskengine.runner import apply_next, attempt_retention, plan_next

_MAX_PER_SHARD = 1000
# Redispatch periods an already-sent task may wait behind a backlog before it is sent again.
_BACKLOG_PATIENCE = 3


@dataclass
class DispatchReport:
    dispatched: int = 0
    recovered: int = 0
    poisoned: int = 0
    skipped: int = 0
    max_lag_ms: int = 0
    outgoing: list[Outgoing] = field(default_factory=list)


class Dispatcher:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def run_once(self) -> DispatchReport:
        engine = self._engine
        now = engine.clock()
        until = now + timedelta(seconds=engine.settings.dispatch_lookahead_seconds)
        shards = engine.store.due_shards()
        with ThreadPoolExecutor(max_workers=min(8, len(shards))) as pool:
            batches = list(
                pool.map(lambda shard: engine.store.query_due(shard, until, _MAX_PER_SHARD), shards)
            )

        report = DispatchReport()
        due = [state for batch in batches for state in batch]
        backlog = self._backlog() if any(state.dispatch_count for state in due) else 0
        for state in due:
            # With messages still waiting in the queue, an already-sent task's message is
            # most likely among them, not lost: sending it again would deepen the backlog, and
            # counting it towards poison would dead-letter healthy work. Such a task is looked
            # at again later; only one overdue by several redispatch periods is sent again,
            # and even then not counted.
            held_back = bool(backlog and state.dispatch_count)
            try:
                if held_back and state.status is not TaskStatus.RUNNING:
                    overdue = now - (state.next_attempt_at or now)
                    if overdue < self._redispatch * _BACKLOG_PATIENCE:
                        self._postpone(state, now)
                        report.skipped += 1
                        continue
                self._handle(state, now, report, count_dispatch=not held_back)
            except StaleStateError:
                report.skipped += 1
            except DependencyError:
                # One task's failed write must not cost the others their dispatch: what was
                # already marked as sent still gets its message below.
                logger.warning(
                    "scheduler could not handle a task", extra={"task_id": state.task_id}
                )
                report.skipped += 1
        self._send(report, now)

        count(Metric.SCHEDULER_RUNS)
        count(Metric.SCHEDULER_DISPATCHED, report.dispatched)
        milliseconds(Metric.SCHEDULER_LAG, report.max_lag_ms)
        if report.dispatched or report.recovered or report.poisoned:
            logger.info(
                "scheduler run",
                extra={
                    "dispatched": report.dispatched,
                    "recovered": report.recovered,
                    "poisoned": report.poisoned,
                    "lag_ms": report.max_lag_ms,
                },
            )
        return report

    def _backlog(self) -> int:
        try:
            work = self._engine.queue.depths()["work"]
        except DependencyError:
            return 0
        return work["visible"] + work["in_flight"]

    @property
    def _redispatch(self) -> timedelta:
        return timedelta(seconds=self._engine.settings.redispatch_after_seconds)

    def _postpone(self, state: TaskState, now: datetime) -> None:
        """Look at this task again one redispatch period from now."""
        update = transitions.look_again_at(now + self._redispatch)
        self._engine.store.update_state(state.task_id, transitions.at_version(update, state))

    def _handle(
        self, state: TaskState, now: datetime, report: DispatchReport, *, count_dispatch: bool
    ) -> None:
        if state.status in (TaskStatus.PENDING, TaskStatus.RETRY_SCHEDULED):
            self._dispatch(state, now, report, count_dispatch=count_dispatch)
        elif state.status is TaskStatus.RUNNING and state.lease_until is not None:
            if state.lease_until <= now:
                self._recover(state, now, report)
                return
            update = transitions.at_version(transitions.look_again_at(state.lease_until), state)
            self._engine.store.update_state(state.task_id, update)
            report.skipped += 1

    def _dispatch(
        self, state: TaskState, now: datetime, report: DispatchReport, *, count_dispatch: bool
    ) -> None:
        engine = self._engine
        if count_dispatch and state.dispatch_count >= engine.settings.max_dispatches:
            self._poison(state, now, report)
            return

        run_at = max(now, state.next_attempt_at or now)
        sends = state.dispatch_count + 1 if count_dispatch else state.dispatch_count
        update = transitions.dispatched(due_at=run_at + self._redispatch, dispatch_count=sends)
        engine.store.update_state(state.task_id, transitions.at_version(update, state))
        if state.dispatch_count == 0 and state.next_attempt_at is not None:
            lag_ms = int((now - state.next_attempt_at).total_seconds() * 1000)
            report.max_lag_ms = max(report.max_lag_ms, lag_ms)
        report.outgoing.append(
            Outgoing(next_message(state), sqs_delay_seconds((run_at - now).total_seconds()))
        )

    def _poison(self, state: TaskState, now: datetime, report: DispatchReport) -> None:
        """Dispatched again and again, never claimed: its message keeps crashing the worker."""
        engine = self._engine
        reason = f"poison: dispatched {state.dispatch_count} times without running"
        update = transitions.finish(
            status=TaskStatus.DEAD_LETTER,
            now=now,
            last_error=reason,
            expires_at=engine.store.terminal_expiry(now),
        )
        new_state = engine.store.update_state(state.task_id, transitions.at_version(update, state))
        count(Metric.POISON_MESSAGES)
        dead_letter(engine, new_state, reason)
        log_transition(new_state, reason=reason)
        report.poisoned += 1

    def _recover(self, state: TaskState, now: datetime, report: DispatchReport) -> None:
        """The worker holding this attempt stopped answering: count the attempt as lost.

        If the worker did record the attempt's outcome and only failed to update the task,
        that outcome stands: a call that succeeded is not run again.
        """
        engine = self._engine
        spec = engine.store.get_spec(state.task_id)
        lost = AttemptRecord(
            number=state.attempt_count,
            generation=state.generation,
            started_at=state.running_since or now,
            finished_at=None,
            outcome=AttemptOutcome.LEASE_EXPIRED,
            error="worker stopped before recording the outcome",
        )
        keep = now + attempt_retention(engine, spec)
        written = engine.store.put_attempt(state.task_id, lost, keep)
        attempt = (
            lost
            if written
            else engine.store.get_attempt(state.task_id, state.generation, state.attempt_count)
            or lost
        )
        if spec is None:
            return
        step = plan_next(engine, state, spec, attempt.outcome, now)
        new_state = apply_next(
            engine,
            state,
            step,
            now=now,
            last_error=attempt.error,
            guard=lambda update: transitions.at_version(
                transitions.held(update, state.lease_token or ""), state
            ),
        )
        count(Metric.LEASES_RECOVERED)
        log_transition(new_state, outcome=attempt.outcome.value, reason=step.reason)
        report.recovered += 1

    def _send(self, report: DispatchReport, now: datetime) -> None:
        engine = self._engine
        failed = engine.queue.send_many(report.outgoing)
        report.dispatched = len(report.outgoing) - len(failed)
        for item in failed:
            count(Metric.ENQUEUE_FAILURES)
            try:
                engine.store.update_state(item.message.task_id, transitions.undispatched(now))
            except (DependencyError, StaleStateError):
                logger.warning(
                    "dispatch failed and the task could not be marked due",
                    extra={"task_id": item.message.task_id},
                )
