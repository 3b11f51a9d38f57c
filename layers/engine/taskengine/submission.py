"""Submitting a task: validate against server rules, persist, then enqueue."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from ulid import ULID

from taskengine.engine import Engine
from taskengine.errors import ConflictError, DependencyError, InvalidRequestError
from taskengine.executors.http import host_is_forbidden
from taskengine.guard import SubmitMemo
from taskengine.models import (
    MAX_START_DAYS,
    HttpTarget,
    RetryPolicy,
    SubmitTaskRequest,
    TaskSpec,
    TaskState,
    TaskStatus,
)
from taskengine.names import Metric
from taskengine.observability import count, log_transition
from taskengine.outbox import enqueue
from taskengine.queue import MAX_DELAY_SECONDS
from taskengine.sealing import split_secrets
from taskengine.settings import EngineSettings, RetryDefaults
from taskengine.store import IdempotencyRecord, TaskRecord

IDEMPOTENCY_HEADER = "Idempotency-Key"
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class Submitted:
    record: TaskRecord
    created: bool


def fingerprint(request: SubmitTaskRequest) -> str:
    """Hash of the canonical JSON of the request: key order and spacing do not matter.

    Secret values are left out, so a client retrying with a refreshed token is the same
    request, and no hash of a secret is ever stored. Header names count in lower case, as
    HTTP reads them.
    """
    if isinstance(request.target, HttpTarget):
        target = split_secrets(request.target)[0]
        headers = {name.lower(): value for name, value in target.headers.items()}
        request = request.model_copy(
            update={"target": target.model_copy(update={"headers": headers})}
        )
    canonical = json.dumps(
        request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def resolve_retry_policy(request: SubmitTaskRequest, defaults: RetryDefaults) -> RetryPolicy:
    overrides = request.retry.model_dump(exclude_none=True) if request.retry else {}
    policy = RetryPolicy.model_validate(
        {
            "max_attempts": defaults.max_attempts,
            "min_backoff_seconds": defaults.min_backoff_seconds,
            "max_backoff_seconds": defaults.max_backoff_seconds,
            "max_doublings": defaults.max_doublings,
            "jitter": defaults.jitter,
            "max_retry_duration_seconds": defaults.max_retry_duration_seconds,
            **overrides,
        }
    )
    limits = (
        ("max_attempts", policy.max_attempts, defaults.limit_max_attempts),
        ("max_backoff_seconds", policy.max_backoff_seconds, defaults.limit_max_backoff_seconds),
        (
            "max_retry_duration_seconds",
            policy.max_retry_duration_seconds,
            defaults.limit_max_retry_duration_seconds,
        ),
    )
    for name, value, limit in limits:
        if value > limit:
            raise InvalidRequestError(f"must be at most {limit:g}", field=f"retry.{name}")
    if policy.min_backoff_seconds > policy.max_backoff_seconds:
        raise InvalidRequestError(
            f"exceeds max_backoff_seconds ({policy.max_backoff_seconds:g})",
            field="retry.min_backoff_seconds",
        )
    return policy


def _check_target(request: SubmitTaskRequest, settings: EngineSettings) -> float:
    """Server-side checks of the target; returns the attempt timeout in seconds."""
    target = request.target
    size = len(target.model_dump_json().encode())
    if size > settings.max_payload_bytes:
        field = "target.body" if isinstance(target, HttpTarget) else "target.payload"
        raise InvalidRequestError(
            f"target is {size} bytes; the limit is {settings.max_payload_bytes}", field=field
        )
    if not isinstance(target, HttpTarget):
        return settings.max_http_timeout_seconds

    host = urlsplit(target.url).hostname or ""
    if host_is_forbidden(host, settings.allow_loopback_targets):
        raise InvalidRequestError(
            "loopback and link-local targets are not allowed", field="target.url"
        )
    timeout = target.timeout_seconds or settings.default_http_timeout_seconds
    if timeout > settings.max_http_timeout_seconds:
        raise InvalidRequestError(
            f"must be at most {settings.max_http_timeout_seconds:g}",
            field="target.timeout_seconds",
        )
    return timeout


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    # Whitespace around a field value is not part of it (RFC 9110, section 5.5).
    key = key.strip(" \t")
    if not _KEY_PATTERN.fullmatch(key):
        raise InvalidRequestError(
            "must be 1-255 visible ASCII characters", field=f"header.{IDEMPOTENCY_HEADER}"
        )
    return key


def first_run_at(request: SubmitTaskRequest, now: datetime) -> datetime:
    if request.schedule_at is not None and request.delay_seconds is not None:
        raise InvalidRequestError(
            "give delay_seconds or schedule_at, not both", field="schedule_at"
        )
    if request.schedule_at is not None:
        if request.schedule_at - now > timedelta(days=MAX_START_DAYS):
            raise InvalidRequestError(
                f"must be at most {MAX_START_DAYS} days ahead", field="schedule_at"
            )
        return max(now, request.schedule_at)
    return now + timedelta(seconds=request.delay_seconds or 0)


def _existing(
    engine: Engine, tenant: str, task_id: str, digest: str, stored_digest: str
) -> Submitted:
    if digest != stored_digest:
        raise ConflictError(
            "this Idempotency-Key was used with a different request body",
            field=f"header.{IDEMPOTENCY_HEADER}",
        )
    record = engine.store.load(task_id)
    if record is None or record.state.tenant != tenant:
        # Keys are scoped by tenant; a record of another tenant here is never returned.
        raise DependencyError(f"task {task_id} named by an idempotency key is missing")
    count(Metric.DUPLICATES_SUPPRESSED)
    return Submitted(record=record, created=False)


def submit(
    engine: Engine, request: SubmitTaskRequest, *, tenant: str, idempotency_key: str | None
) -> Submitted:
    settings, now = engine.settings, engine.clock()
    key = check_idempotency_key(idempotency_key)
    digest = fingerprint(request)

    if key is not None:
        memo = engine.guard.lookup_submit(tenant, key)
        if memo is not None:
            return _existing(engine, tenant, memo.task_id, digest, memo.fingerprint)

    timeout = _check_target(request, settings)
    policy = resolve_retry_policy(request, engine.retry_defaults)
    task_id = str(ULID())
    run_at = first_run_at(request, now)
    enqueue_now = run_at - now <= timedelta(seconds=MAX_DELAY_SECONDS)

    target, secrets = (
        split_secrets(request.target)
        if isinstance(request.target, HttpTarget)
        else (request.target, None)
    )
    sealed = engine.sealer.seal(task_id, secrets) if secrets else None
    state = TaskState(
        task_id=task_id,
        tenant=tenant,
        status=TaskStatus.PENDING,
        created_at=now,
        updated_at=now,
        next_attempt_at=run_at,
        dispatch_count=1 if enqueue_now else 0,
        idempotency_key=key,
        target_type=target.type,
        timeout_seconds=timeout,
    )
    spec = TaskSpec(target=target, retry=policy, sealed_headers=sealed)
    redispatch = timedelta(seconds=settings.redispatch_after_seconds)
    window = settings.idempotency_window_seconds
    idempotency = (
        IdempotencyRecord(tenant, key, task_id, digest, int(now.timestamp()) + window)
        if key is not None
        else None
    )
    created = engine.store.create(
        state,
        spec,
        due_at=run_at + redispatch if enqueue_now else run_at,
        spec_expires_at=run_at
        + timedelta(seconds=policy.max_retry_duration_seconds, days=settings.task_retention_days),
        idempotency=idempotency,
        now=now,
    )
    if not created:
        assert key is not None
        existing = engine.store.get_idempotency(tenant, key, now)
        if existing is None:
            raise DependencyError("idempotency key vanished during submit; retry the request")
        # A transaction that timed out but was applied fails its retry's condition on its own
        # key: the key naming the id made just now means this request created the task.
        if existing.task_id != task_id:
            return _existing(engine, tenant, existing.task_id, digest, existing.fingerprint)

    if key is not None:
        engine.guard.remember_submit(tenant, key, SubmitMemo(task_id, digest), window)
    count(Metric.TASKS_SUBMITTED)
    log_transition(state, reason="submitted")

    if enqueue_now:
        enqueue(engine, state, run_at)
    return Submitted(record=TaskRecord(state=state, spec=spec), created=True)
