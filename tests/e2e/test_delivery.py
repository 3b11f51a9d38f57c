"""What the downstream really receives for tasks that succeed, retry and fail."""

from __future__ import annotations

import json

import pytest

from e2e.client import QUICK_RETRY, TaskApi, http_task
from e2e.downstream import Downstream, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_a_task_that_succeeds_first_time_is_delivered_exactly_once(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a downstream that answers 200
    url = downstream.script(path, Reply(200))

    # When a task for it is submitted and finishes
    task = api.wait_for(api.submit(http_task(url, body={"order": 42}))["task_id"])

    # Then it completed after one call that carried the task's body
    assert task["status"] == "COMPLETED"
    (call,) = downstream.calls(path)
    assert call.method == "POST"
    assert json.loads(call.body) == {"order": 42}


def test_a_task_failing_twice_with_503_is_delivered_three_times(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a downstream that answers 503, 503, then 200
    url = downstream.script(path, Reply(503), Reply(503), Reply(200))

    # When the task runs to the end
    task = api.wait_for(api.submit(http_task(url))["task_id"])

    # Then the downstream saw attempts 1, 2 and 3, and the task completed
    assert task["status"] == "COMPLETED"
    assert [call.attempt for call in downstream.calls(path)] == [1, 2, 3]


def test_the_attempt_history_records_numbers_outcomes_and_status_codes(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a downstream that answers 503, 503, then 200
    url = downstream.script(path, Reply(503), Reply(503), Reply(200))

    # When the task runs to the end
    task = api.wait_for(api.submit(http_task(url))["task_id"])

    # Then every attempt is in the history, in order, with what happened
    history = [(a["number"], a["outcome"], a["status_code"]) for a in task["attempts"]]
    assert history == [
        (1, "retryable_failure", 503),
        (2, "retryable_failure", 503),
        (3, "succeeded", 200),
    ]
    assert task["attempt_count"] == 3
    assert all(a["started_at"] and a["finished_at"] for a in task["attempts"])


def test_a_task_that_never_succeeds_is_dead_lettered_after_max_attempts(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a downstream that always answers 503
    url = downstream.script(path, Reply(503))

    # When the task has used all its attempts
    task = api.wait_for(api.submit(http_task(url))["task_id"])

    # Then the downstream was called max_attempts times and the task is dead-lettered
    assert task["status"] == "DEAD_LETTER"
    assert len(downstream.calls(path)) == QUICK_RETRY["max_attempts"]
    assert task["attempts"][-1]["outcome"] == "retryable_failure"


def test_a_dead_lettered_task_is_listed_by_the_admin_api(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a task that ended in the dead-letter state
    url = downstream.script(path, Reply(503))
    task_id = api.wait_for(api.submit(http_task(url))["task_id"])["task_id"]

    # When the operator lists dead letters
    response = api.http.get("/v1/admin/tasks", params={"status": "DEAD_LETTER", "limit": 100})

    # Then the task is among them
    assert response.status_code == 200
    assert task_id in {item["task_id"] for item in response.json()["items"]}


def test_a_permanent_4xx_dead_letters_after_one_attempt(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a downstream that rejects the request as invalid
    url = downstream.script(path, Reply(422))

    # When the task runs
    task = api.wait_for(api.submit(http_task(url))["task_id"])

    # Then one call was enough to give up
    assert task["status"] == "DEAD_LETTER"
    assert len(downstream.calls(path)) == 1
    assert [(a["outcome"], a["status_code"]) for a in task["attempts"]] == [
        ("permanent_failure", 422)
    ]


def test_every_attempt_names_the_task_and_carries_one_idempotency_key(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a downstream that fails once then succeeds
    url = downstream.script(path, Reply(503), Reply(200))

    # When the task runs to the end
    task_id = api.submit(http_task(url))["task_id"]
    api.wait_for(task_id)

    # Then both attempts carry the task id, their number and the same idempotency key
    calls = downstream.calls(path)
    assert [call.headers["x-task-id"] for call in calls] == [task_id, task_id]
    assert [call.headers["x-task-attempt"] for call in calls] == ["1", "2"]
    assert len({call.headers["idempotency-key"] for call in calls}) == 1


def test_secret_headers_reach_the_downstream_but_never_the_api(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a task whose target carries an Authorization header
    url = downstream.script(path, Reply(200))
    body = http_task(url, headers={"Authorization": "Bearer top-secret", "X-Plain": "shown"})

    # When it runs and is read back
    submitted = api.submit(body)
    task = api.wait_for(submitted["task_id"])

    # Then the downstream got the secret, and no API answer contains it
    (call,) = downstream.calls(path)
    assert call.headers["authorization"] == "Bearer top-secret"
    assert call.headers["x-plain"] == "shown"
    assert "top-secret" not in json.dumps(submitted)
    assert "top-secret" not in json.dumps(task)


def test_a_retry_due_seconds_later_waits_for_its_time(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a downstream that fails once, and a backoff spanning many scheduler runs
    url = downstream.script(path, Reply(503), Reply(200))
    retry = {**QUICK_RETRY, "min_backoff_seconds": 4, "max_backoff_seconds": 4}

    # When the task runs to the end
    task = api.wait_for(api.submit(http_task(url, retry=retry))["task_id"])

    # Then the scheduler left the waiting retry alone and the second attempt succeeded
    assert task["status"] == "COMPLETED", task["last_error"]
    assert [call.attempt for call in downstream.calls(path)] == [1, 2]
