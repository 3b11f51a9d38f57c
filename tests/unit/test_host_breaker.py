"""HostBreaker against the real Redis: opens on repeated failures, resets on success."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import redis

from taskengine.breaker import HostBreaker

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    # Database 9 is this module's own, so flushing it touches nothing else.
    connection = redis.Redis.from_url(REDIS_URL, db=9)
    connection.flushdb()
    yield connection
    connection.flushdb()


TENANT = "arn:aws:iam::123456789012:role/billing"


def breaker(client: redis.Redis | None, threshold: int = 3) -> HostBreaker:
    return HostBreaker(client, failure_threshold=threshold, window_seconds=30, open_seconds=20)


def test_the_circuit_opens_when_failures_reach_the_threshold(client: redis.Redis) -> None:
    # Given a breaker that opens on the third failure
    host_breaker = breaker(client)

    # When a host fails three times
    opened = [host_breaker.record_failure(TENANT, "svc.internal") for _ in range(3)]

    # Then the third failure opens it, for about the configured time, for that host and
    # that tenant only
    assert opened == [False, False, True]
    assert 19 < host_breaker.open_for_seconds(TENANT, "svc.internal") <= 20
    assert host_breaker.open_for_seconds(TENANT, "other.internal") == 0
    assert host_breaker.open_for_seconds("another-tenant", "svc.internal") == 0


def test_a_success_resets_the_failure_count(client: redis.Redis) -> None:
    # Given two failures
    host_breaker = breaker(client)
    host_breaker.record_failure(TENANT, "svc.internal")
    host_breaker.record_failure(TENANT, "svc.internal")

    # When a success comes in, then two more failures
    host_breaker.record_success(TENANT, "svc.internal")
    opened = [host_breaker.record_failure(TENANT, "svc.internal") for _ in range(2)]

    # Then the circuit is still closed
    assert opened == [False, False]
    assert host_breaker.open_for_seconds(TENANT, "svc.internal") == 0


def test_without_redis_the_circuit_stays_closed() -> None:
    # Given a breaker whose Redis does not answer
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
    host_breaker = breaker(dead, threshold=1)

    # When failures are recorded
    opened = host_breaker.record_failure(TENANT, "svc.internal")

    # Then nothing opens and attempts keep running
    assert opened is False
    assert host_breaker.open_for_seconds(TENANT, "svc.internal") == 0
