"""Engine settings, parsed once from the environment at cold start."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from taskengine import names
from taskengine.models import JitterMode


class RetryDefaults(BaseSettings):
    """Server-side retry defaults and the bounds a task may override within."""

    model_config = SettingsConfigDict(env_prefix="TASKENGINE_RETRY_", frozen=True)

    max_attempts: int = Field(default=5, ge=1)
    min_backoff_seconds: float = Field(default=1.0, ge=0)
    max_backoff_seconds: float = Field(default=300.0, ge=0)
    max_doublings: int = Field(default=16, ge=0)
    jitter: JitterMode = JitterMode.FULL
    max_retry_duration_seconds: float = Field(default=86_400.0, gt=0)

    limit_max_attempts: int = Field(default=100, ge=1)
    limit_max_backoff_seconds: float = Field(default=86_400.0, gt=0)
    limit_max_retry_duration_seconds: float = Field(default=30 * 86_400.0, gt=0)


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=names.ENV_PREFIX, frozen=True)

    table_name: str = names.TABLE_NAME
    work_queue_url: str = ""
    dead_letter_queue_url: str = ""
    header_key_id: str = names.HEADER_KEY_ALIAS
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_secret_arn: str = ""
    redis_timeout_seconds: float = Field(default=0.5, gt=0)

    due_shards: int = Field(default=8, ge=1, le=256)
    # How far ahead the scheduler looks; must stay within SQS's 900 s delay ceiling.
    dispatch_lookahead_seconds: int = Field(default=90, ge=1, le=900)
    # A dispatched task still not claimed after this long is sent again.
    redispatch_after_seconds: int = Field(default=300, ge=1)
    # Dispatches of one attempt that never got claimed before the task is declared poison.
    max_dispatches: int = Field(default=5, ge=1)
    # Time a worker holds an attempt beyond the target's timeout before it counts as lost.
    lease_margin_seconds: int = Field(default=30, ge=1)
    # A message may arrive this early and still be claimed (SQS delays are not exact).
    claim_skew_seconds: float = Field(default=2.0, ge=0)

    # Per-host circuit breaker: this many retryable failures within the window open it.
    breaker_failure_threshold: int = Field(default=20, ge=1)
    breaker_window_seconds: int = Field(default=30, ge=1)
    breaker_open_seconds: int = Field(default=30, ge=1)

    idempotency_window_seconds: int = Field(default=86_400, ge=60)
    task_retention_days: int = Field(default=30, ge=1)
    max_payload_bytes: int = Field(default=200_000, ge=1024)
    default_http_timeout_seconds: float = Field(default=30.0, gt=0)
    max_http_timeout_seconds: float = Field(default=840.0, gt=0)
    allow_loopback_targets: bool = False
    # "name=module:attr,..." runs Lambda targets as local Python callables (local stack only).
    local_functions: str = ""
    local_mode: bool = False
    default_tenant: str = "default"
    # The metric dimension naming this engine; the CDK app sets it to the deployment's name.
    deployment: str = Field(default=names.LOCAL_DEPLOYMENT, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _check_windows(self) -> EngineSettings:
        if self.redispatch_after_seconds <= self.claim_skew_seconds:
            raise ValueError("redispatch_after_seconds must exceed claim_skew_seconds")
        # A task just sent is due again at its run time plus redispatch_after; were that inside
        # the lookahead, every scheduler run would send it again and count it towards poison.
        if self.dispatch_lookahead_seconds >= self.redispatch_after_seconds:
            raise ValueError("dispatch_lookahead_seconds must be below redispatch_after_seconds")
        return self


@lru_cache(maxsize=1)
def load_settings() -> EngineSettings:
    return EngineSettings()


@lru_cache(maxsize=1)
def load_retry_defaults() -> RetryDefaults:
    return RetryDefaults()
