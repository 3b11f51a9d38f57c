"""The engine's collaborators, wired once per process from settings."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import boto3
from aws_lambda_powertools.utilities import parameters
from botocore.config import Config

from taskengine import guard, names
from taskengine.breaker import HostBreaker
from taskengine.executors.http import HttpExecutor
from taskengine.executors.lambda_ import (
    Boto3LambdaInvoker,
    LambdaExecutor,
    LambdaInvoker,
    PythonFunctionInvoker,
)
from taskengine.guard import RedisGuard
from taskengine.models import utcnow
from taskengine.names import Metric
from taskengine.observability import count, logger, metrics
from taskengine.queue import WorkQueue
from taskengine.retry import RandomSource
from taskengine.sealing import HeaderSealer
from taskengine.settings import EngineSettings, RetryDefaults, load_retry_defaults, load_settings
from taskengine.store import TaskStore

_AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=10,
    max_pool_connections=32,
)


@dataclass
class Engine:
    settings: EngineSettings
    retry_defaults: RetryDefaults
    store: TaskStore
    queue: WorkQueue
    guard: RedisGuard
    sealer: HeaderSealer
    http: HttpExecutor
    lambdas: LambdaExecutor
    breaker: HostBreaker
    clock: Callable[[], datetime] = utcnow
    rand: RandomSource = field(default_factory=lambda: random.SystemRandom().random)


def _redis_password(settings: EngineSettings) -> str | None:
    if not settings.redis_secret_arn:
        return None
    secret = parameters.get_secret(settings.redis_secret_arn, max_age=3600)
    return secret if isinstance(secret, str) else secret.decode()


def _lambda_invoker(settings: EngineSettings, session: boto3.Session) -> LambdaInvoker:
    if settings.local_functions:
        return PythonFunctionInvoker.from_env_value(settings.local_functions)
    return Boto3LambdaInvoker(session=session)


def _on_redis_unavailable(operation: str) -> None:
    logger.warning("redis unavailable", extra={"operation": operation, "fallback": "dynamodb"})
    count(Metric.REDIS_UNAVAILABLE)


def build_engine(settings: EngineSettings, retry_defaults: RetryDefaults) -> Engine:
    metrics.set_default_dimensions(**{names.DEPLOYMENT_DIMENSION: settings.deployment})
    session = boto3.Session()
    redis_client = guard.connect(
        settings.redis_url, settings.redis_timeout_seconds, _redis_password(settings)
    )
    return Engine(
        settings=settings,
        retry_defaults=retry_defaults,
        store=TaskStore(
            session.client("dynamodb", config=_AWS_CONFIG),
            settings.table_name,
            due_shards=settings.due_shards,
            retention_days=settings.task_retention_days,
        ),
        queue=WorkQueue(
            session.client("sqs", config=_AWS_CONFIG),
            settings.work_queue_url,
            settings.dead_letter_queue_url,
        ),
        guard=RedisGuard(redis_client, on_unavailable=_on_redis_unavailable),
        sealer=HeaderSealer(session.client("kms", config=_AWS_CONFIG), settings.header_key_id),
        http=HttpExecutor(allow_loopback=settings.allow_loopback_targets),
        lambdas=LambdaExecutor(_lambda_invoker(settings, session)),
        breaker=HostBreaker(
            redis_client,
            failure_threshold=settings.breaker_failure_threshold,
            window_seconds=settings.breaker_window_seconds,
            open_seconds=settings.breaker_open_seconds,
        ),
    )


@lru_cache(maxsize=1)
def default_engine() -> Engine:
    """The process-wide engine of a Lambda function, built at cold start."""
    return build_engine(load_settings(), load_retry_defaults())
