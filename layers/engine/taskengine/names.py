"""Names shared by the runtime, the local stack and the CDK app.

Everything that two places must agree on lives here once: environment variable names,
resource name stems, the DynamoDB key layout, Redis key formats and CloudWatch metric names.
"""

from __future__ import annotations

import hashlib
from typing import Final

SERVICE: Final = "taskengine"

# Resource name stems. The deployed stack prefixes them with its own name; the local stack
# creates them exactly as written here.
TABLE_NAME: Final = "taskengine-tasks"
WORK_QUEUE_NAME: Final = "taskengine-work"
DEAD_LETTER_QUEUE_NAME: Final = "taskengine-dead-letter"
HEADER_KEY_ALIAS: Final = "alias/taskengine-headers"

# Environment variables read by settings.EngineSettings (prefix included).
ENV_PREFIX: Final = "TASKENGINE_"
ENV_TABLE_NAME: Final = "TASKENGINE_TABLE_NAME"
ENV_WORK_QUEUE_URL: Final = "TASKENGINE_WORK_QUEUE_URL"
ENV_DEAD_LETTER_QUEUE_URL: Final = "TASKENGINE_DEAD_LETTER_QUEUE_URL"
ENV_HEADER_KEY_ID: Final = "TASKENGINE_HEADER_KEY_ID"
ENV_REDIS_URL: Final = "TASKENGINE_REDIS_URL"
ENV_REDIS_SECRET_ARN: Final = "TASKENGINE_REDIS_SECRET_ARN"  # noqa: S105 - a variable name
ENV_DUE_SHARDS: Final = "TASKENGINE_DUE_SHARDS"
ENV_ALLOW_LOOPBACK_TARGETS: Final = "TASKENGINE_ALLOW_LOOPBACK_TARGETS"
ENV_LOCAL_MODE: Final = "TASKENGINE_LOCAL_MODE"
ENV_DEPLOYMENT: Final = "TASKENGINE_DEPLOYMENT"

# DynamoDB single-table layout.
PK: Final = "pk"
SK: Final = "sk"
DUE_INDEX: Final = "due"
DUE_INDEX_PK: Final = "due_shard"
DUE_INDEX_SK: Final = "due_at"
STATUS_INDEX: Final = "by_status"
STATUS_INDEX_PK: Final = "status"
STATUS_INDEX_SK: Final = "task_id"
TTL_ATTRIBUTE: Final = "expires_at"

# Redis key formats.
REDIS_PREFIX: Final = "te"


def tenant_token(tenant: str) -> str:
    """A fixed-width, separator-free stand-in for a tenant inside composite keys.

    Tenants are principal ARNs or JWT subjects and may hold ':' or '#'; hashing them keeps
    "a:b" + "c" and "a" + "b:c" from ever naming the same key.
    """
    return hashlib.sha256(tenant.encode()).hexdigest()[:32]


def redis_submit_key(tenant: str, idempotency_key: str) -> str:
    return f"{REDIS_PREFIX}:submit:{tenant_token(tenant)}:{idempotency_key}"


def redis_breaker_key(tenant: str, host: str, part: str) -> str:
    return f"{REDIS_PREFIX}:breaker:{tenant_token(tenant)}:{host}:{part}"


def redis_claim_key(task_id: str, generation: int, attempt: int) -> str:
    return f"{REDIS_PREFIX}:claim:{task_id}:{generation}:{attempt}"


# CloudWatch metrics (Embedded Metric Format through Powertools Metrics).
METRICS_NAMESPACE: Final = "TaskEngine"
# Every metric carries the service and the deployment it came from, so two engines in one
# account and region keep apart on dashboards and alarms.
SERVICE_DIMENSION: Final = "service"
DEPLOYMENT_DIMENSION: Final = "deployment"
LOCAL_DEPLOYMENT: Final = "local"


class Metric:
    """Metric names the engine emits; infra/ builds its dashboard and alarms from these."""

    TASKS_SUBMITTED: Final = "TasksSubmitted"
    TASKS_COMPLETED: Final = "TasksCompleted"
    ATTEMPTS_STARTED: Final = "AttemptsStarted"
    ATTEMPTS_FAILED: Final = "AttemptsFailed"
    RETRIES_SCHEDULED: Final = "RetriesScheduled"
    DEAD_LETTERS: Final = "DeadLetters"
    DUPLICATES_SUPPRESSED: Final = "DuplicatesSuppressed"
    ATTEMPT_DURATION: Final = "AttemptDuration"
    POISON_MESSAGES: Final = "PoisonMessages"
    SCHEDULER_DISPATCHED: Final = "SchedulerDispatched"
    SCHEDULER_LAG: Final = "SchedulerLag"
    SCHEDULER_RUNS: Final = "SchedulerRuns"
    LEASES_RECOVERED: Final = "LeasesRecovered"
    REDIS_UNAVAILABLE: Final = "RedisUnavailable"
    ENQUEUE_FAILURES: Final = "EnqueueFailures"
    ATTEMPTS_DEFERRED: Final = "AttemptsDeferred"
    CIRCUITS_OPENED: Final = "CircuitsOpened"


ALL_METRICS: Final = tuple(
    value for name, value in vars(Metric).items() if not name.startswith("_")
)
