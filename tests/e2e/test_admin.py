"""Operator actions over HTTP: replay a finished task, cancel one that has not run."""

from __future__ import annotations

import time

import pytest

from e2e.client import TaskApi, http_task, wait_until_drained
from e2e.conftest import RunningStack
from e2e.downstream import Downstream, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_replay_runs_a_dead_lettered_task_again_as_a_new_generation(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a task dead-lettered after a permanent failure, whose downstream is now fixed
    url = downstream.script(path, Reply(400), Reply(200))
    first = api.wait_for(api.submit(http_task(url))["task_id"])
    assert first["status"] == "DEAD_LETTER"

    # When the operator replays it
    response = api.http.post(
        f"/v1/admin/tasks/{first['task_id']}/replay", json={"reason": "downstream fixed"}
    )
    assert response.status_code in (200, 202), response.text
    replayed = api.wait_for(first["task_id"], frozenset({"COMPLETED"}))

    # Then it ran again as a new generation with its attempts counted afresh
    assert replayed["generation"] == first["generation"] + 1
    assert replayed["attempt_count"] == 1
    assert len(downstream.calls(path)) == 2


def test_a_replayed_generation_sends_a_new_idempotency_key(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a task that needed two attempts in its first generation
    url = downstream.script(path, Reply(503), Reply(200), Reply(200))
    task_id = api.submit(http_task(url))["task_id"]
    api.wait_for(task_id)

    # When it is replayed and runs again
    api.http.post(f"/v1/admin/tasks/{task_id}/replay", json={"reason": "run again"})
    api.wait_for(task_id, frozenset({"COMPLETED"}))

    # Then the key is stable within the first generation and differs in the replay
    first_a, first_b, replay = (call.headers["idempotency-key"] for call in downstream.calls(path))
    assert first_a == first_b
    assert replay != first_a


def test_a_cancelled_delayed_task_is_never_delivered(
    api: TaskApi, downstream: Downstream, path: str, stack: RunningStack
) -> None:
    # Given a task due in two seconds
    url = downstream.script(path, Reply(200))
    task_id = api.submit({**http_task(url), "delay_seconds": 2})["task_id"]

    # When it is cancelled before it is due
    response = api.http.post(f"/v1/tasks/{task_id}/cancel", json={"reason": "not needed"})

    # Then it is CANCELLED and, once its message has come and gone, was never called
    assert response.status_code == 200, response.text
    assert api.read(task_id)["status"] == "CANCELLED"
    time.sleep(2)  # past the due time: the delayed message is now deliverable
    wait_until_drained(stack.moto_url, stack.work_queue_url)
    assert downstream.calls(path) == []
    assert api.read(task_id)["status"] == "CANCELLED"
