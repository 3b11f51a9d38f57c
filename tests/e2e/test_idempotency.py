"""Exactly-once as clients and the downstream see it: idempotent submits, Redis lost mid-way."""

from __future__ import annotations

import uuid

import pytest
import redis

from e2e.client import TaskApi, http_task
from e2e.conftest import RunningStack
from e2e.downstream import Downstream, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _reversed_keys(body: dict[str, object]) -> dict[str, object]:
    return {
        key: _reversed_keys(value) if isinstance(value, dict) else value
        for key, value in reversed(body.items())
    }


def _flush_redis(stack: RunningStack) -> None:
    if stack.redis_embedded:
        pytest.skip("the stack runs an embedded Redis; flushing is tested against a real one")
    # FLUSHDB, not FLUSHALL: the stack's Redis database is the tests' own.
    redis.Redis.from_url(stack.redis_url).flushdb()


def test_the_same_key_and_body_return_the_same_task(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a task submitted with an Idempotency-Key
    url = downstream.script(path, Reply(200))
    body, key = http_task(url), uuid.uuid4().hex
    first = api.submit(body, **{"Idempotency-Key": key})

    # When the client retries with the same key and the same body, keys in another order
    again = api.http.post("/v1/tasks", json=_reversed_keys(body), headers={"Idempotency-Key": key})

    # Then it gets 200 and the same task, which runs once
    assert again.status_code == 200, again.text
    assert again.json()["task_id"] == first["task_id"]
    api.wait_for(first["task_id"])
    assert [call.attempt for call in downstream.calls(path)] == [1]


def test_the_same_key_with_another_body_is_rejected(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a task submitted with an Idempotency-Key
    url = downstream.script(path, Reply(200))
    key = uuid.uuid4().hex
    api.submit(http_task(url), **{"Idempotency-Key": key})

    # When the same key comes with a different body
    response = api.http.post(
        "/v1/tasks", json=http_task(url, body={"n": 2}), headers={"Idempotency-Key": key}
    )

    # Then the request is refused as a conflict, with a problem document
    assert response.status_code in (409, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_losing_redis_between_attempts_causes_no_duplicate_call(
    api: TaskApi, downstream: Downstream, path: str, stack: RunningStack
) -> None:
    # Given a task whose first attempt has failed
    url = downstream.script(path, Reply(503), Reply(200))
    task_id = api.submit(http_task(url))["task_id"]
    api.wait_for(task_id, frozenset({"RETRY_SCHEDULED", "RUNNING", "COMPLETED"}))

    # When Redis loses everything before the task finishes
    _flush_redis(stack)
    task = api.wait_for(task_id)

    # Then each attempt reached the downstream exactly once
    assert task["status"] == "COMPLETED"
    assert [call.attempt for call in downstream.calls(path)] == [1, 2]


def test_losing_redis_after_a_submit_keeps_the_idempotent_answer(
    api: TaskApi, downstream: Downstream, path: str, stack: RunningStack
) -> None:
    # Given a task submitted with an Idempotency-Key and Redis then flushed
    url = downstream.script(path, Reply(200))
    key = uuid.uuid4().hex
    first = api.submit(http_task(url), **{"Idempotency-Key": key})
    _flush_redis(stack)

    # When the client retries the submit
    again = api.http.post("/v1/tasks", json=http_task(url), headers={"Idempotency-Key": key})

    # Then the same task comes back and the downstream is called once
    assert again.status_code == 200, again.text
    assert again.json()["task_id"] == first["task_id"]
    api.wait_for(first["task_id"])
    assert [call.attempt for call in downstream.calls(path)] == [1]
