"""Running one attempt: claim it, execute the target, record the outcome, plan what is next."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from ulid import ULID

from taskengine import transitions
from taskengine.engine import Engine
from taskengine.errors import DependencyError, StaleStateError
from taskengine.executors import AttemptContext, ExecutionResult, short_error
from taskengine.models import (
    AttemptOutcome,
    AttemptRecord,
    HttpTarget,
    TaskSpec,
    TaskState,
    TaskStatus,
    WorkMessage,
)
from taskengine.names import Metric
from taskengine.observability import count, log_transition, logger, milliseconds, tracer
from taskengine.outbox import dead_letter, enqueue
from taskengine.queue import MAX_DELAY_SECONDS, sqs_delay_seconds
from taskengine.retry import next_attempt_time
from taskengine.sealing import SealedParts
from taskengine.store import ClaimResult, Update

# Time kept back from the Lambda's remaining time to record the outcome after the call.
_RECORD_RESERVE_SECONDS = 5.0
_REDIS_CLAIM_SECONDS = 60
_SPEC_RETRY_SECONDS = 5.0

Guard = Callable[[Update], Update]


class RunResult(StrEnum):
    EXECUTED = "executed"
    DUPLICATE = "duplicate"
    DEFERRED = "deferred"
    REQUEUED_EARLY = "requeued_early"


@dataclass(frozen=True)
class NextStep:
    status: TaskStatus
    next_attempt_at: datetime | None = None
    reason: str | None = None


def plan_next(
    engine: Engine,
    state: TaskState,
    spec: TaskSpec,
    outcome: AttemptOutcome,
    now: datetime,
    *,
    retry_after_seconds: float | None = None,
) -> NextStep:
    """The state that follows an attempt's outcome under the task's retry policy."""
    if outcome is AttemptOutcome.SUCCEEDED:
        return NextStep(TaskStatus.COMPLETED)
    if outcome is AttemptOutcome.PERMANENT_FAILURE:
        return NextStep(TaskStatus.DEAD_LETTER, reason="permanent failure")

    when = next_attempt_time(
        attempt=state.attempt_count,
        policy=spec.retry,
        first_attempt_at=state.first_attempt_at or now,
        now=now,
        rand=engine.rand,
        retry_after_seconds=retry_after_seconds,
    )
    if when is None:
        return NextStep(TaskStatus.DEAD_LETTER, reason="retries exhausted")
    return NextStep(TaskStatus.RETRY_SCHEDULED, next_attempt_at=when)


def apply_next(
    engine: Engine,
    state: TaskState,
    step: NextStep,
    *,
    now: datetime,
    last_error: str | None,
    guard: Guard,
) -> TaskState:
    """Write the planned state, then send what it needs (a retry message or a dead letter)."""
    if step.status is TaskStatus.RETRY_SCHEDULED:
        assert step.next_attempt_at is not None
        soon = step.next_attempt_at - now <= timedelta(seconds=MAX_DELAY_SECONDS)
        redispatch = timedelta(seconds=engine.settings.redispatch_after_seconds)
        update = transitions.schedule_retry(
            now=now,
            next_attempt_at=step.next_attempt_at,
            due_at=step.next_attempt_at + redispatch if soon else step.next_attempt_at,
            dispatched=soon,
            last_error=last_error,
        )
        new_state = engine.store.update_state(state.task_id, guard(update))
        count(Metric.RETRIES_SCHEDULED)
        if soon:
            enqueue(engine, new_state, step.next_attempt_at)
        return new_state

    update = transitions.finish(
        status=step.status,
        now=now,
        last_error=last_error,
        expires_at=engine.store.terminal_expiry(now),
    )
    new_state = engine.store.update_state(state.task_id, guard(update))
    if step.status is TaskStatus.DEAD_LETTER:
        dead_letter(engine, new_state, step.reason or "dead letter")
    else:
        count(Metric.TASKS_COMPLETED)
    return new_state


def attempt_retention(engine: Engine, spec: TaskSpec | None) -> timedelta:
    duration = spec.retry.max_retry_duration_seconds if spec else 0
    return timedelta(seconds=duration, days=engine.settings.task_retention_days)


class AttemptRunner:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def run(self, message: WorkMessage, remaining_seconds: float) -> RunResult:
        engine, settings = self._engine, self._engine.settings
        now = engine.clock()
        lease_seconds = int(remaining_seconds + settings.lease_margin_seconds)

        # The Redis claim only has to outlive a burst of duplicate deliveries; DynamoDB guards
        # the rest. Kept short, it cannot hide a delivery whose worker died before claiming.
        first = engine.guard.claim(
            message.task_id, message.generation, message.attempt, _REDIS_CLAIM_SECONDS
        )
        if first is False:
            count(Metric.DUPLICATES_SUPPRESSED)
            logger.info("duplicate delivery suppressed", extra=_fields(message, "redis"))
            return RunResult.DUPLICATE

        token = str(ULID())
        try:
            claim = engine.store.update_state_returning_old(
                message.task_id,
                transitions.claim(
                    generation=message.generation,
                    attempt=message.attempt,
                    now=now,
                    latest_due=now + timedelta(seconds=settings.claim_skew_seconds),
                    lease_until=now + timedelta(seconds=lease_seconds),
                    lease_token=token,
                ),
            )
        except DependencyError as error:
            claim = self._claim_after_error(message, token, error)
        # A timed-out claim that DynamoDB applied all the same fails its own retry's condition;
        # the lease token it wrote says the attempt is ours.
        state = claim.state
        if state is None or not (claim.claimed or state.lease_token == token):
            return self._not_claimed(message, state, now)

        try:
            spec = engine.store.get_spec(state.task_id)
        except DependencyError:
            # Nothing ran yet: hand the attempt back instead of holding it until the lease ends.
            self._defer(state, token, wait_seconds=_SPEC_RETRY_SECONDS, reason="spec unreadable")
            return RunResult.DEFERRED
        if spec is not None and self._defer_if_circuit_open(state, spec, token):
            return RunResult.DEFERRED
        log_transition(state)
        count(Metric.ATTEMPTS_STARTED)
        result = self._execute(state, spec, remaining_seconds)
        self._record(state, spec, token, result)
        return RunResult.EXECUTED

    def _claim_after_error(
        self, message: WorkMessage, token: str, error: DependencyError
    ) -> ClaimResult:
        """Whether a claim that failed in transit was written: ours only if it holds our token.

        Without this, a claim applied before its answer was lost would leave the task RUNNING
        with no worker, and its attempt would be spent as lease_expired without ever running.
        """
        engine = self._engine
        try:
            current = engine.store.get_state(message.task_id)
        except DependencyError:
            engine.guard.release(message.task_id, message.generation, message.attempt)
            raise
        if current is not None and current.lease_token == token:
            return ClaimResult(True, current)
        engine.guard.release(message.task_id, message.generation, message.attempt)
        raise error

    def _defer_if_circuit_open(self, state: TaskState, spec: TaskSpec, token: str) -> bool:
        engine = self._engine
        host = target_host(spec)
        wait = engine.breaker.open_for_seconds(state.tenant, host) if host else 0.0
        now = engine.clock()
        deadline = (state.first_attempt_at or now) + timedelta(
            seconds=spec.retry.max_retry_duration_seconds
        )
        if wait <= 0 or now + timedelta(seconds=wait) > deadline:
            return False

        self._defer(state, token, wait_seconds=wait, reason=f"circuit open for {host}")
        return True

    def _defer(self, state: TaskState, token: str, *, wait_seconds: float, reason: str) -> None:
        """Give a claimed attempt back unrun: it comes back later as the same attempt."""
        engine = self._engine
        now = engine.clock()
        # Spread the deferred attempts over a second so they do not all return at once.
        run_at = now + timedelta(seconds=wait_seconds + engine.rand())
        redispatch = timedelta(seconds=engine.settings.redispatch_after_seconds)
        update = transitions.defer(
            attempt=state.attempt_count, now=now, next_attempt_at=run_at, due_at=run_at + redispatch
        )
        try:
            new_state = engine.store.update_state(state.task_id, transitions.held(update, token))
        except StaleStateError:
            return
        # The same attempt comes back later: its Redis claim must not make it look like a
        # duplicate of itself.
        engine.guard.release(state.task_id, state.generation, state.attempt_count)
        count(Metric.ATTEMPTS_DEFERRED)
        log_transition(new_state, reason=reason, delay_ms=int(wait_seconds * 1000))
        enqueue(engine, new_state, run_at)

    def _not_claimed(
        self, message: WorkMessage, current: TaskState | None, now: datetime
    ) -> RunResult:
        engine = self._engine
        engine.guard.release(message.task_id, message.generation, message.attempt)
        if (
            current is not None
            and current.generation == message.generation
            and current.attempt_count == message.attempt - 1
            and current.status in (TaskStatus.PENDING, TaskStatus.RETRY_SCHEDULED)
            and current.next_attempt_at is not None
            and current.next_attempt_at > now
        ):
            # SQS delivered ahead of the task's time: send it again for the remaining wait
            # rather than drop what may be the only message for this attempt.
            wait = (current.next_attempt_at - now).total_seconds()
            engine.queue.send(message, sqs_delay_seconds(wait))
            return RunResult.REQUEUED_EARLY
        count(Metric.DUPLICATES_SUPPRESSED)
        logger.info("stale or duplicate delivery dropped", extra=_fields(message, "dynamodb"))
        return RunResult.DUPLICATE

    @tracer.capture_method(capture_response=False)
    def _execute(
        self, state: TaskState, spec: TaskSpec | None, remaining_seconds: float
    ) -> ExecutionResult:
        engine = self._engine
        timeout = max(1.0, min(state.timeout_seconds, remaining_seconds - _RECORD_RESERVE_SECONDS))
        context = AttemptContext(
            task_id=state.task_id,
            generation=state.generation,
            attempt=state.attempt_count,
            timeout_seconds=timeout,
        )
        if spec is None:
            return ExecutionResult(
                outcome=AttemptOutcome.PERMANENT_FAILURE, duration_ms=0, error="task spec missing"
            )
        try:
            sealed = (
                engine.sealer.unseal(state.task_id, spec.sealed_headers)
                if spec.sealed_headers
                else SealedParts()
            )
            if isinstance(spec.target, HttpTarget):
                target = sealed.apply(spec.target)
                result = engine.http.execute(target, sealed.headers, context)
                self._feed_breaker(state.tenant, spec, result)
                return result
            return engine.lambdas.execute(spec.target, {}, context)
        except DependencyError as error:
            # KMS or DynamoDB did not answer: the attempt may well work next time.
            logger.warning(
                "attempt could not run",
                extra={"task_id": state.task_id, "attempt": state.attempt_count},
            )
            return ExecutionResult(
                outcome=AttemptOutcome.RETRYABLE_FAILURE, duration_ms=0, error=str(error)
            )
        except Exception as error:  # noqa: BLE001 - an attempt that cannot run is a failed one
            # Anything else is deterministic (a value the executor cannot send): retrying would
            # only burn the remaining attempts.
            logger.exception(
                "attempt could not run",
                extra={"task_id": state.task_id, "attempt": state.attempt_count},
            )
            return ExecutionResult(
                outcome=AttemptOutcome.PERMANENT_FAILURE,
                duration_ms=0,
                error=short_error(f"engine error: {type(error).__name__}"),
            )

    def _feed_breaker(self, tenant: str, spec: TaskSpec, result: ExecutionResult) -> None:
        host = target_host(spec)
        if not host:
            return
        if result.outcome is AttemptOutcome.SUCCEEDED:
            self._engine.breaker.record_success(tenant, host)
            return
        # 429 is the host pacing this caller, not failing; Retry-After handles it.
        paced = result.status_code == 429
        failed = result.outcome is AttemptOutcome.RETRYABLE_FAILURE and not paced
        if failed and self._engine.breaker.record_failure(tenant, host):
            count(Metric.CIRCUITS_OPENED)
            logger.warning("circuit opened", extra={"host": host})

    def _record(
        self, state: TaskState, spec: TaskSpec | None, token: str, result: ExecutionResult
    ) -> None:
        engine = self._engine
        now = engine.clock()
        attempt = AttemptRecord(
            number=state.attempt_count,
            generation=state.generation,
            started_at=state.running_since or now,
            finished_at=now,
            outcome=result.outcome,
            status_code=result.status_code,
            error=result.error,
            duration_ms=result.duration_ms,
        )
        milliseconds(Metric.ATTEMPT_DURATION, result.duration_ms)
        if result.outcome is not AttemptOutcome.SUCCEEDED:
            count(Metric.ATTEMPTS_FAILED)
        engine.store.put_attempt(state.task_id, attempt, now + attempt_retention(engine, spec))

        step = (
            plan_next(
                engine,
                state,
                spec,
                result.outcome,
                now,
                retry_after_seconds=result.retry_after_seconds,
            )
            if spec is not None
            else NextStep(TaskStatus.DEAD_LETTER, reason="task spec missing")
        )
        try:
            new_state = apply_next(
                engine,
                state,
                step,
                now=now,
                last_error=result.error,
                guard=lambda update: transitions.held(update, token),
            )
        except StaleStateError:
            logger.info(
                "attempt result recorded after the task changed",
                extra={
                    "task_id": state.task_id,
                    "attempt": state.attempt_count,
                    "outcome": result.outcome.value,
                },
            )
            return
        delay_ms = (
            int((step.next_attempt_at - now).total_seconds() * 1000)
            if step.next_attempt_at
            else None
        )
        log_transition(
            new_state,
            outcome=result.outcome.value,
            error=result.error,
            delay_ms=delay_ms,
            reason=step.reason,
        )


def target_host(spec: TaskSpec) -> str | None:
    if isinstance(spec.target, HttpTarget):
        return urlsplit(spec.target.url).hostname
    return None


def _fields(message: WorkMessage, source: str) -> dict[str, object]:
    return {
        "task_id": message.task_id,
        "generation": message.generation,
        "attempt": message.attempt,
        "source": source,
    }
