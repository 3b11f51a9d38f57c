"""Integration fixtures: the real handlers against a moto server and a real Redis.

Each xdist worker runs its own moto server and uses its own Redis database, so the two never
see each other's data. Every test starts from empty resources.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import redis
from harness import (
    REDIS_HOST,
    REDIS_PORT,
    Api,
    ApiResponse,
    Downstream,
    LambdaContext,
    Queues,
    Stack,
    Worker,
    aws_client,
    create_resources,
    empty_resources,
    http_event,
    redis_db,
)

from functions.api.handler import lambda_handler as api_handler
from functions.scheduler.handler import lambda_handler as scheduler_handler
from taskengine.engine import build_engine, default_engine
from taskengine.settings import load_retry_defaults, load_settings
from taskengine_local.moto_server import MotoServer


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    # The local stack's moto server: conditional writes are atomic there, as on AWS, which
    # the worker's concurrent records rely on.
    server = MotoServer("127.0.0.1")
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=redis_db())


@pytest.fixture(scope="session")
def resources(moto_endpoint: str) -> Stack:
    """The table, queues and key, created once per worker as the deployed stack names them."""
    httpx.post(f"{moto_endpoint}/moto-api/reset").raise_for_status()
    work_url, dlq_url = create_resources(moto_endpoint)
    return Stack(moto_endpoint, work_url, dlq_url, redis_db())


@pytest.fixture
def stack(resources: Stack, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """Empty resources and Redis, and the engine's environment for the handlers."""
    empty_resources(
        resources.endpoint_url, (resources.work_queue_url, resources.dead_letter_queue_url)
    )
    redis_client.flushdb()
    built = resources
    work_url = built.work_queue_url
    for name, value in built.environment().items():
        monkeypatch.setenv(name, value)

    # One engine serves every test of a worker; it is rebuilt only if something else in
    # this process cached other settings.
    if load_settings().work_queue_url != work_url or load_settings().redis_url != built.redis_url:
        load_settings.cache_clear()
        load_retry_defaults.cache_clear()
        default_engine.cache_clear()
    return built


@pytest.fixture
def sqs(stack: Stack) -> Any:
    return aws_client("sqs", stack.endpoint_url)


@pytest.fixture
def dynamodb(stack: Stack) -> Any:
    return aws_client("dynamodb", stack.endpoint_url)


@pytest.fixture
def api(stack: Stack) -> Api:
    def call(method: str, path: str, **kwargs: Any) -> ApiResponse:
        response = api_handler(http_event(method, path, **kwargs), LambdaContext())
        return ApiResponse(
            status=response["statusCode"],
            headers=response.get("headers") or {},
            text=response.get("body") or "",
        )

    return call


@pytest.fixture
def worker(sqs: Any, stack: Stack) -> Worker:
    return Worker(sqs, stack.work_queue_url)


@pytest.fixture
def scheduler(stack: Stack) -> Callable[[], dict[str, Any]]:

    return lambda: scheduler_handler({}, LambdaContext())


@pytest.fixture
def queues(sqs: Any, stack: Stack) -> Queues:
    return Queues(sqs, stack)


@pytest.fixture
def make_engine(stack: Stack) -> Callable[..., Any]:
    """Build a separate Engine (own clients), optionally with other settings or a clock."""

    def build(*, clock: Callable[[], datetime] | None = None, **settings: Any) -> Any:
        engine = build_engine(load_settings().model_copy(update=settings), load_retry_defaults())
        if clock is not None:
            engine.clock = clock
        return engine

    return build


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def downstream_server() -> Iterator[Downstream]:
    server = Downstream()
    yield server
    server.close()


@pytest.fixture
def downstream(downstream_server: Downstream) -> Downstream:
    downstream_server.reset()
    return downstream_server
