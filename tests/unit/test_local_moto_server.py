"""The local moto server serves DynamoDB one request at a time, as conditional writes need."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from taskengine_local.moto_server import SerializedDynamoDB


class CountingApp:
    """A WSGI app that records how many requests it serves at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.most_active = 0

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(0.01)  # long enough for racing threads to overlap if nothing stops them
        with self._lock:
            self.active -= 1
        return [b"{}"]


def _serve_concurrently(app: SerializedDynamoDB, target: str, count: int = 8) -> None:
    start = threading.Barrier(count)

    def request() -> None:
        start.wait()
        app({"HTTP_X_AMZ_TARGET": target}, lambda *args: None)

    threads = [threading.Thread(target=request) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_dynamodb_requests_never_overlap() -> None:
    # Given the middleware in front of an app that counts concurrent requests
    inner = CountingApp()

    # When eight DynamoDB requests arrive at once
    _serve_concurrently(SerializedDynamoDB(inner), "DynamoDB_20120810.UpdateItem")

    # Then they were served one at a time
    assert inner.most_active == 1


def test_other_requests_pass_straight_through() -> None:
    # Given the middleware in front of an app
    inner = CountingApp()
    app = SerializedDynamoDB(inner)

    # When an SQS request is served
    body = app({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, lambda *args: None)

    # Then the inner app's own response comes back untouched
    assert body == [b"{}"]
