"""The engine's HTTP API as the tests use it, and the task bodies they submit."""

from __future__ import annotations

import time
from typing import Any

import boto3
import httpx
import pytest

SETTLE_TIMEOUT_SECONDS = 45.0
TERMINAL = frozenset({"COMPLETED", "DEAD_LETTER", "CANCELLED"})

# Small, deterministic policies keep the suite fast.
QUICK_RETRY = {
    "max_attempts": 3,
    "min_backoff_seconds": 0.1,
    "max_backoff_seconds": 1,
    "jitter": "none",
}


def http_task(url: str, retry: dict[str, Any] | None = None, **target: Any) -> dict[str, Any]:
    return {
        "target": {"type": "http", "url": url, "method": "POST", "body": {"n": 1}, **target},
        "retry": retry or QUICK_RETRY,
    }


class TaskApi:
    def __init__(self, client: httpx.Client) -> None:
        self.http = client

    def submit(self, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.http.post("/v1/tasks", json=body, headers=headers)
        assert response.status_code == 202, response.text
        return dict(response.json())

    def read(self, task_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_for(self, task_id: str, statuses: frozenset[str] = TERMINAL) -> dict[str, Any]:
        """Poll until the task reaches one of the statuses; the timeout is a ceiling only."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        task = self.read(task_id)
        while task["status"] not in statuses:
            if time.monotonic() > deadline:
                pytest.fail(f"task {task_id} still {task['status']}: {task}")
            time.sleep(0.1)
            task = self.read(task_id)
        return task


def wait_until_drained(moto_url: str, queue_url: str) -> None:
    """Wait until the queue holds no message: visible, in flight or delayed."""
    sqs = boto3.client(
        "sqs",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    counts = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while True:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=counts)
        if not any(int(value) for value in attributes["Attributes"].values()):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"queue {queue_url} still holds messages: {attributes['Attributes']}")
        time.sleep(0.2)
