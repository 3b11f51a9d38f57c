"""Redis fast path for duplicate suppression: attempt claims and client idempotency keys.

Redis only ever short-circuits work that DynamoDB's conditional writes would refuse anyway, so
losing Redis (flush, failover, outage) costs speed, never correctness. While Redis is failing
the guard stops calling it for a short cool-down instead of paying a timeout per call.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from taskengine import names

_COOL_DOWN_SECONDS = 5.0


@dataclass(frozen=True)
class SubmitMemo:
    task_id: str
    fingerprint: str


class RedisGuard:
    def __init__(
        self,
        client: redis.Redis | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        on_unavailable: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self._monotonic = monotonic
        self._on_unavailable = on_unavailable
        self._skip_until = 0.0
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._client is not None and self._monotonic() >= self._skip_until

    def _failed(self, operation: str) -> None:
        with self._lock:
            self._skip_until = self._monotonic() + _COOL_DOWN_SECONDS
        if self._on_unavailable is not None:
            self._on_unavailable(operation)

    def claim(self, task_id: str, generation: int, attempt: int, ttl_seconds: int) -> bool | None:
        """True if first to claim the attempt, False if someone was, None if Redis is unknown."""
        if self._client is None or not self.available:
            return None
        try:
            won = self._client.set(
                names.redis_claim_key(task_id, generation, attempt),
                "1",
                nx=True,
                ex=max(1, ttl_seconds),
            )
        except redis.RedisError:
            self._failed("claim")
            return None
        return bool(won)

    def release(self, task_id: str, generation: int, attempt: int) -> None:
        if self._client is None or not self.available:
            return
        try:
            self._client.delete(names.redis_claim_key(task_id, generation, attempt))
        except redis.RedisError:
            self._failed("release")

    def lookup_submit(self, tenant: str, key: str) -> SubmitMemo | None:
        if self._client is None or not self.available:
            return None
        try:
            raw = self._client.get(names.redis_submit_key(tenant, key))
        except redis.RedisError:
            self._failed("lookup_submit")
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        return SubmitMemo(task_id=data["task_id"], fingerprint=data["fingerprint"])

    def remember_submit(self, tenant: str, key: str, memo: SubmitMemo, ttl_seconds: int) -> None:
        if self._client is None or not self.available:
            return
        try:
            self._client.set(
                names.redis_submit_key(tenant, key),
                json.dumps({"task_id": memo.task_id, "fingerprint": memo.fingerprint}),
                ex=max(1, ttl_seconds),
            )
        except redis.RedisError:
            self._failed("remember_submit")

    def ping(self) -> bool:
        if self._client is None:
            return False
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False


def connect(url: str, timeout_seconds: float, password: str | None = None) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        password=password,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        retry_on_timeout=False,
    )
