"""A task's life through the real handlers: attempts, retries, dead letters, admin actions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from harness import Api, Downstream, Queues, Reply, Worker, http_task

from taskengine import names, redrive
from taskengine.models import WorkMessage

TASKS = "/v1/tasks"
ADMIN = "/v1/admin/tasks"
TABLE = names.TABLE_NAME


def read(api: Api, task_id: str) -> dict[str, Any]:
    response = api("GET", f"{TASKS}/{task_id}")
    assert response.status == 200
    return response.json  # type: ignore[no-any-return]


def submit(api: Api, body: dict[str, Any], **kwargs: Any) -> str:
    response = api("POST", TASKS, body=body, **kwargs)
    assert response.status == 202, response.text
    return response.json["task_id"]  # type: ignore[no-any-return]


def test_a_task_that_succeeds_first_time_completes_after_one_call(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a task whose target answers 200
    task_id = submit(api, http_task(downstream.script("/ok", Reply(200))))

    # When the worker runs
    worker.drain()

    # Then the target was called once and the task completed with one successful attempt
    task = read(api, task_id)
    assert len(downstream.calls_to("/ok")) == 1
    assert task["status"] == "COMPLETED"
    assert task["attempt_count"] == 1
    [attempt] = task["attempts"]
    assert attempt["outcome"] == "succeeded"
    assert attempt["status_code"] == 200
    assert attempt["number"] == 1


def test_each_attempt_carries_the_task_headers(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    task_id = submit(api, http_task(downstream.url("/headers")))

    worker.drain()

    [call] = downstream.calls_to("/headers")
    assert call.header("X-Task-Id") == task_id
    assert call.header("X-Task-Attempt") == "1"
    assert call.header("Idempotency-Key") == f"{task_id}.0"


def test_a_task_that_fails_twice_then_succeeds_keeps_every_attempt(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a target that answers 503, 500, then 200
    url = downstream.script("/flaky", Reply(503), Reply(500), Reply(200))
    task_id = submit(api, http_task(url, retry={"max_attempts": 5}))

    # When the worker runs until nothing is left
    worker.drain()

    # Then three calls were made and the history tells the story
    task = read(api, task_id)
    assert len(downstream.calls_to("/flaky")) == 3
    assert task["status"] == "COMPLETED"
    assert [a["number"] for a in task["attempts"]] == [1, 2, 3]
    assert [a["outcome"] for a in task["attempts"]] == [
        "retryable_failure",
        "retryable_failure",
        "succeeded",
    ]
    assert [a["status_code"] for a in task["attempts"]] == [503, 500, 200]
    calls = downstream.calls_to("/flaky")
    assert [c.header("X-Task-Attempt") for c in calls] == ["1", "2", "3"]
    assert {c.header("Idempotency-Key") for c in calls} == {f"{task_id}.0"}


def test_a_task_that_always_fails_is_dead_lettered_after_max_attempts(
    api: Api, downstream: Downstream, worker: Worker, queues: Queues
) -> None:
    # Given a target that always answers 503 and a task allowed three attempts
    url = downstream.script("/down", Reply(503))
    task_id = submit(api, http_task(url, retry={"max_attempts": 3}))

    # When the worker runs until nothing is left
    worker.drain()

    # Then it ran three times and is DEAD_LETTER, in the DLQ and in the admin listing
    task = read(api, task_id)
    assert len(downstream.calls_to("/down")) == 3
    assert task["status"] == "DEAD_LETTER"
    assert task["attempt_count"] == 3
    assert task["last_error"].startswith("HTTP 503")
    assert [m["task_id"] for m in queues.dead_letters()] == [task_id]
    listed = api("GET", ADMIN, query="status=DEAD_LETTER")
    assert [item["task_id"] for item in listed.json["items"]] == [task_id]


def test_a_permanent_failure_is_dead_lettered_after_one_call(
    api: Api, downstream: Downstream, worker: Worker, queues: Queues
) -> None:
    # Given a target that answers 404
    url = downstream.script("/gone", Reply(404, body=b"no such hook"))
    task_id = submit(api, http_task(url, retry={"max_attempts": 5}))

    # When the worker runs
    worker.drain()

    # Then there is no retry
    task = read(api, task_id)
    assert len(downstream.calls_to("/gone")) == 1
    assert task["status"] == "DEAD_LETTER"
    assert task["attempts"][0]["outcome"] == "permanent_failure"
    assert task["attempts"][0]["status_code"] == 404
    # The reason phrase only: a response body may echo the request, so it is never stored
    assert task["last_error"] == "HTTP 404 Not Found"
    assert len(queues.dead_letters()) == 1


def test_replay_runs_a_dead_task_again_as_a_new_generation(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a task that failed twice and was dead-lettered
    url = downstream.script("/replay", Reply(503), Reply(503), Reply(200))
    task_id = submit(api, http_task(url, retry={"max_attempts": 2}))
    worker.drain()
    assert read(api, task_id)["status"] == "DEAD_LETTER"

    # When an operator replays it
    replayed = api("POST", f"{ADMIN}/{task_id}/replay", body={"reason": "hook fixed"})

    # Then it is a fresh generation that runs again
    assert replayed.status == 200
    assert replayed.json["generation"] == 1
    assert replayed.json["attempt_count"] == 0
    assert replayed.json["status"] == "PENDING"
    worker.drain()
    task = read(api, task_id)
    assert task["status"] == "COMPLETED"
    assert [(a["generation"], a["number"]) for a in task["attempts"]] == [(1, 1)]

    # And the downstream key is stable within a generation and differs between them
    keys = [call.header("Idempotency-Key") for call in downstream.calls_to("/replay")]
    assert keys == [f"{task_id}.0", f"{task_id}.0", f"{task_id}.1"]


def test_replay_with_the_same_idempotency_key_happens_once(
    api: Api, downstream: Downstream, worker: Worker, queues: Queues
) -> None:
    # Given a completed task
    task_id = submit(api, http_task(downstream.url("/once")))
    worker.drain()

    # When the operator's replay request is sent twice with one key
    path = f"{ADMIN}/{task_id}/replay"
    headers = {"Idempotency-Key": "replay-1"}
    first = api("POST", path, body={"reason": "resend"}, headers=headers)
    second = api("POST", path, body={"reason": "resend"}, headers=headers)

    # Then both succeed, the generation moved once and one message was queued
    assert (first.status, second.status) == (200, 200)
    assert first.json["generation"] == second.json["generation"] == 1
    assert [a["action"] for a in second.json["actions"]] == ["replay"]
    assert queues.total(queues.work_url) == 1
    worker.drain()
    assert len(downstream.calls_to("/once")) == 2


def test_replay_with_a_used_idempotency_key_and_another_reason_is_a_conflict(
    api: Api, downstream: Downstream, worker: Worker, queues: Queues
) -> None:
    # Given a completed task replayed once under a key
    task_id = submit(api, http_task(downstream.url("/keyed")))
    worker.drain()
    path = f"{ADMIN}/{task_id}/replay"
    headers = {"Idempotency-Key": "replay-2"}
    api("POST", path, body={"reason": "resend"}, headers=headers)

    # When the same key comes with another reason
    other = api("POST", path, body={"reason": "something else"}, headers=headers)

    # Then it is refused naming the key, and nothing more was replayed
    assert other.status == 409
    assert other.json["field"] == "header.Idempotency-Key"
    assert queues.total(queues.work_url) == 1
    assert [a["reason"] for a in api("GET", f"{TASKS}/{task_id}").json["actions"]] == ["resend"]


def test_admin_actions_record_who_when_and_why(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a completed task
    task_id = submit(api, http_task(downstream.url("/audit")))
    worker.drain()
    before = datetime.now().astimezone()

    # When an operator replays it with a reason
    api("POST", f"{ADMIN}/{task_id}/replay", body={"reason": "customer asked"})

    # Then the action is on the task
    [action] = read(api, task_id)["actions"]
    assert action["action"] == "replay"
    assert action["actor"] == "default"
    assert action["reason"] == "customer asked"
    assert action["generation"] == 0
    at = datetime.fromisoformat(action["at"])
    assert before - timedelta(seconds=1) <= at <= datetime.now().astimezone()


def test_a_cancelled_delayed_task_does_not_run_when_its_message_arrives(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a task delayed by a minute
    task_id = submit(api, http_task(downstream.url("/cancelled"), delay_seconds=60))

    # When it is cancelled and then its message arrives
    cancelled = api("POST", f"{TASKS}/{task_id}/cancel", body={"reason": "not needed"})
    worker.send_raw(WorkMessage(task_id=task_id, generation=0, attempt=1).model_dump_json())
    worker.drain()

    # Then it stays cancelled and the target is never called
    assert cancelled.status == 200
    assert cancelled.json["status"] == "CANCELLED"
    assert read(api, task_id)["status"] == "CANCELLED"
    assert downstream.calls_to("/cancelled") == []


def test_cancelling_a_completed_task_is_a_conflict(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    task_id = submit(api, http_task(downstream.url("/done")))
    worker.drain()

    response = api("POST", f"{TASKS}/{task_id}/cancel")

    assert response.status == 409
    assert response.content_type == "application/problem+json"
    assert response.json["field"] == "status"


def test_retry_now_runs_a_scheduled_retry_before_its_time(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a task whose first attempt failed and whose retry is ten minutes away
    url = downstream.script("/later", Reply(503), Reply(200))
    retry = {"min_backoff_seconds": 600, "max_backoff_seconds": 600}
    task_id = submit(api, http_task(url, retry=retry))
    worker.drain()
    waiting = read(api, task_id)
    assert waiting["status"] == "RETRY_SCHEDULED"

    # When an operator asks for the retry now
    response = api("POST", f"{ADMIN}/{task_id}/retry", body={"reason": "downstream is back"})
    worker.drain()

    # Then the second attempt runs at once and the task completes
    assert response.status == 200
    assert len(downstream.calls_to("/later")) == 2
    task = read(api, task_id)
    assert task["status"] == "COMPLETED"
    assert [a["outcome"] for a in task["attempts"]] == ["retryable_failure", "succeeded"]
    assert [a["action"] for a in task["actions"]] == ["retry"]


def test_retry_now_of_a_task_that_is_not_waiting_is_a_conflict(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    task_id = submit(api, http_task(downstream.url("/done")))
    worker.drain()

    response = api("POST", f"{ADMIN}/{task_id}/retry")

    assert response.status == 409
    assert response.json["field"] == "status"


def test_dead_letters_can_be_redriven_in_bulk(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a dead-lettered task
    task_id = submit(api, http_task(downstream.script("/bulk", Reply(404), Reply(200))))
    worker.drain()

    # When an operator redrives the dead letters
    response = api("POST", "/v1/admin/dead-letters/redrive", body={"limit": 10})

    # Then the task runs again as a new generation
    assert response.status == 200
    worker.drain()
    assert read(api, task_id)["status"] == "COMPLETED"


def test_a_redrive_replays_each_task_once_even_when_it_dead_letters_again_meanwhile(
    api: Api, downstream: Downstream, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two tasks dead-lettered by a permanent failure, and workers fast enough to run
    # each replayed task (and dead-letter it again) before the redrive reads its next letter
    url = downstream.script("/gone", Reply(404))
    task_ids = [submit(api, http_task(url)) for _ in range(2)]
    worker.drain()
    real_replay = redrive.operations.replay

    def replay_then_work(*args: Any, **kwargs: Any) -> Any:
        replayed = real_replay(*args, **kwargs)
        worker.drain()
        return replayed

    monkeypatch.setattr(redrive.operations, "replay", replay_then_work)

    # When an operator redrives with room for more replays than there are tasks
    report = api("POST", "/v1/admin/dead-letters/redrive", body={"limit": 10}).json

    # Then each task was replayed once, and its new letter waits for the next redrive
    assert sorted(report["replayed"]) == sorted(task_ids)
    for task_id in task_ids:
        task = read(api, task_id)
        assert task["generation"] == 1
        assert [a["action"] for a in task["actions"]] == ["replay"]
    assert len(downstream.calls_to("/gone")) == 4


def test_a_repeated_keyed_redrive_returns_the_first_report_and_replays_nothing_more(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a task that dead-letters on every generation
    task_id = submit(api, http_task(downstream.script("/never", Reply(404), Reply(404))))
    worker.drain()
    key = {"Idempotency-Key": "redrive-1"}

    # When an operator redrives with a key, the task dead-letters again, and the request repeats
    first = api("POST", "/v1/admin/dead-letters/redrive", body={"limit": 5}, headers=key)
    worker.drain()
    again = api("POST", "/v1/admin/dead-letters/redrive", body={"limit": 5}, headers=key)
    worker.drain()

    # Then the repeat answers the first report and the task was replayed once only
    assert first.status == 200
    assert first.json["replayed"] == [task_id]
    assert again.status == 200
    assert again.json == first.json
    task = read(api, task_id)
    assert task["generation"] == 1
    assert task["status"] == "DEAD_LETTER"
    assert len(downstream.calls_to("/never")) == 2


def test_a_redrive_key_reused_with_another_body_is_a_conflict(api: Api) -> None:
    key = {"Idempotency-Key": "redrive-2"}
    first = api("POST", "/v1/admin/dead-letters/redrive", body={"dry_run": True}, headers=key)

    other = api("POST", "/v1/admin/dead-letters/redrive", body={"limit": 3}, headers=key)

    assert first.status == 200
    assert other.status == 409
    assert other.json["field"] == "header.Idempotency-Key"


def test_admin_action_keys_are_checked_like_submission_keys(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    task_id = submit(api, http_task(downstream.url("/long-key")))

    response = api("POST", f"{TASKS}/{task_id}/cancel", headers={"Idempotency-Key": "k" * 300})

    assert response.status == 422
    assert response.json["field"] == "header.Idempotency-Key"
    assert read(api, task_id)["status"] == "PENDING"


def test_a_replay_by_a_lower_case_id_extends_the_tasks_own_spec(
    api: Api, downstream: Downstream, worker: Worker, dynamodb: Any
) -> None:
    # Given a dead-lettered task
    task_id = submit(api, http_task(downstream.script("/lower", Reply(404), Reply(200))))
    worker.drain()

    # When an operator replays it naming its id in lower case
    response = api("POST", f"{ADMIN}/{task_id.lower()}/replay", body={"reason": "case"})

    # Then the task's own items changed and no item was written under the lower-case id
    assert response.status == 200
    assert response.json["generation"] == 1
    partitions = {item["pk"]["S"] for item in dynamodb.scan(TableName=TABLE)["Items"]}
    assert f"TASK#{task_id}" in partitions
    assert f"TASK#{task_id.lower()}" not in partitions
