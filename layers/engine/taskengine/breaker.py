"""A circuit breaker per tenant and target host, kept in Redis and shared by every worker.

Circuits are per tenant so that one caller's failing tasks cannot hold back another's calls
to the same shared host.

When a host keeps failing, further attempts against it are deferred (not run, not counted)
until the circuit's cool-down ends, so a downstream outage does not turn into a retry storm
that burns every task's attempts. Without Redis the circuit stays closed: attempts run as if
there were no breaker, which is the safe direction.
"""

from __future__ import annotations

import redis

from taskengine import names


class HostBreaker:
    def __init__(
        self,
        client: redis.Redis | None,
        *,
        failure_threshold: int,
        window_seconds: int,
        open_seconds: int,
    ) -> None:
        self._client = client
        self._threshold = failure_threshold
        self._window = window_seconds
        self._open = open_seconds

    def open_for_seconds(self, tenant: str, host: str) -> float:
        """Seconds until the tenant's circuit for `host` closes again; 0 when it is closed."""
        if self._client is None:
            return 0.0
        try:
            ttl_ms = int(self._client.pttl(names.redis_breaker_key(tenant, host, "open")))
        except redis.RedisError:
            return 0.0
        return ttl_ms / 1000 if ttl_ms > 0 else 0.0

    def record_failure(self, tenant: str, host: str) -> bool:
        """Count a retryable failure; True when this failure opened the circuit."""
        if self._client is None:
            return False
        failures_key = names.redis_breaker_key(tenant, host, "failures")
        try:
            pipe = self._client.pipeline()
            pipe.incr(failures_key)
            pipe.expire(failures_key, self._window, nx=True)
            failures = int(pipe.execute()[0])
            if failures < self._threshold:
                return False
            opened = self._client.set(
                names.redis_breaker_key(tenant, host, "open"), "1", nx=True, ex=self._open
            )
            self._client.delete(failures_key)
        except redis.RedisError:
            return False
        return bool(opened)

    def record_success(self, tenant: str, host: str) -> None:
        if self._client is None:
            return
        try:
            self._client.delete(names.redis_breaker_key(tenant, host, "failures"))
        except redis.RedisError:
            return
