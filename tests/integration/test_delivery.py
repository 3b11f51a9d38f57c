"""At-most-once attempts under SQS's at-least-once delivery, with and without Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import redis
from harness import Api, Clock, Downstream, Queues, Reply, Worker, http_task
from ulid import ULID

import functions.worker.handler as worker_module
from taskengine import transitions
from taskengine.dispatcher import Dispatcher
from taskengine.models import WorkMessage
from taskengine.runner import AttemptRunner, RunResult

TASKS = "/v1/tasks"


def submit(api: Api, body: dict[str, Any]) -> str:
    response = api("POST", TASKS, body=body)
    assert response.status == 202, response.text
    return response.json["task_id"]  # type: ignore[no-any-return]


def status(api: Api, task_id: str) -> str:
    return api("GET", f"{TASKS}/{task_id}").json["status"]  # type: ignore[no-any-return]


def take_message(worker: Worker) -> dict[str, Any]:
    """Receive the one queued message and remove it from the queue."""
    [message] = worker.receive()
    worker.delete(message)
    return message


def test_a_poison_message_fails_alone_and_the_rest_of_the_batch_runs(
    api: Api, downstream: Downstream, worker: Worker, queues: Queues
) -> None:
    # Given a batch of [valid, not-json, valid]
    url = downstream.url("/batch")
    submit(api, http_task(url, target={"body": {"n": 1}}))
    submit(api, http_task(url, target={"body": {"n": 2}}))
    worker.send_raw("not-json{")
    messages = worker.receive()
    assert len(messages) == 3
    bad = next(m for m in messages if m["Body"] == "not-json{")
    good = [m for m in messages if m is not bad]

    # When the worker handles the batch
    result = worker.run_messages([good[0], bad, good[1]])

    # Then both valid tasks ran once, and only the bad message is failed or dead-lettered
    assert len(downstream.calls_to("/batch")) == 2
    assert result.failed_ids <= {bad["MessageId"]}
    dead = queues.dead_letters()
    if not result.failed_ids:
        assert [d["raw_body"] for d in dead] == ["not-json{"]
        assert dead[0]["reason"].startswith("poison")


def test_a_redelivery_after_redis_was_flushed_does_not_run_the_target_again(
    api: Api, downstream: Downstream, worker: Worker, redis_client: redis.Redis
) -> None:
    # Given a task's message delivered once
    task_id = submit(api, http_task(downstream.url("/flushed")))
    message = take_message(worker)
    worker.run_messages([message])

    # When Redis loses everything and the same message is delivered again
    redis_client.flushdb()
    worker.send_raw(message["Body"])
    worker.drain()

    # Then the target still ran once
    assert len(downstream.calls_to("/flushed")) == 1
    assert status(api, task_id) == "COMPLETED"


def test_a_duplicate_delivery_is_suppressed_by_redis(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a task's message delivered twice in the same batch
    submit(api, http_task(downstream.url("/twice")))
    message = take_message(worker)
    worker.send_raw(message["Body"])
    duplicate = take_message(worker)

    # When the worker handles both
    result = worker.run_messages([message, duplicate])

    # Then the target ran once and neither record is reported failed
    assert len(downstream.calls_to("/twice")) == 1
    assert result.failed_ids == set()


def test_without_redis_a_task_runs_once_and_dynamodb_refuses_the_duplicate(
    api: Api,
    downstream: Downstream,
    worker: Worker,
    make_engine: Any,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker whose Redis is unreachable
    engine = make_engine(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    monkeypatch.setattr(worker_module, "default_engine", lambda: engine)
    task_id = submit(api, http_task(downstream.url("/no-redis")))
    message = take_message(worker)

    # When the same message is delivered twice
    first = worker.run_messages([message])
    worker.send_raw(message["Body"])
    worker.drain()

    # Then the target ran exactly once and the task completed
    assert first.failed_ids == set()
    assert len(downstream.calls_to("/no-redis")) == 1
    assert status(api, task_id) == "COMPLETED"


def test_the_runner_reports_the_duplicate_it_refused_without_redis(
    api: Api, downstream: Downstream, worker: Worker, make_engine: Any, closed_port: int
) -> None:
    engine = make_engine(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    submit(api, http_task(downstream.url("/runner")))
    body = WorkMessage.model_validate_json(take_message(worker)["Body"])
    runner = AttemptRunner(engine)

    assert runner.run(body, 60) is RunResult.EXECUTED
    assert runner.run(body, 60) is RunResult.DUPLICATE
    assert len(downstream.calls_to("/runner")) == 1


def _claim_with_lease(engine: Any, task_id: str, now: datetime, lease_seconds: int) -> None:
    """What a worker does before it calls the target: win the attempt and hold a lease."""
    result = engine.store.update_state_returning_old(
        task_id,
        transitions.claim(
            generation=0,
            attempt=1,
            now=now,
            latest_due=now + timedelta(seconds=2),
            lease_until=now + timedelta(seconds=lease_seconds),
            lease_token="crashed-worker",
        ),
    )
    assert result.claimed


@pytest.mark.parametrize(
    ("max_attempts", "expected_status"), [(3, "RETRY_SCHEDULED"), (1, "DEAD_LETTER")]
)
def test_an_attempt_whose_worker_died_is_recovered_when_its_lease_expires(
    api: Api,
    downstream: Downstream,
    worker: Worker,
    queues: Queues,
    make_engine: Any,
    max_attempts: int,
    expected_status: str,
) -> None:
    # Given a task whose attempt was claimed by a worker that then died
    url = downstream.url("/crash")
    task_id = submit(api, http_task(url, retry={"max_attempts": max_attempts}))
    take_message(worker)
    clock = Clock(datetime.now(UTC))
    engine = make_engine(clock=clock)
    _claim_with_lease(engine, task_id, clock.now, lease_seconds=90)
    assert status(api, task_id) == "RUNNING"

    # When the scheduler runs before the lease ends, nothing changes
    clock.now += timedelta(seconds=60)
    assert Dispatcher(engine).run_once().recovered == 0

    # When it runs after the lease ended
    clock.now += timedelta(seconds=60)
    report = Dispatcher(engine).run_once()

    # Then the attempt is recorded as lost and the task moves on
    assert report.recovered == 1
    task = api("GET", f"{TASKS}/{task_id}").json
    assert task["status"] == expected_status
    [attempt] = task["attempts"]
    assert attempt["outcome"] == "lease_expired"
    assert attempt["number"] == 1
    if expected_status == "DEAD_LETTER":
        assert [m["task_id"] for m in queues.dead_letters()] == [task_id]
    else:
        # The retry is queued for attempt 2 and runs (on the scheduler's clock)
        message = WorkMessage.model_validate_json(take_message(worker)["Body"])
        assert message == WorkMessage(task_id=task_id, generation=0, attempt=2)
        assert AttemptRunner(engine).run(message, 60) is RunResult.EXECUTED
        assert [c.header("X-Task-Attempt") for c in downstream.calls_to("/crash")] == ["2"]


def _first_retry_delay(task: dict[str, Any]) -> float:
    finished = datetime.fromisoformat(task["attempts"][0]["finished_at"])
    return (datetime.fromisoformat(task["next_attempt_at"]) - finished).total_seconds()


@pytest.mark.parametrize(
    ("retry_after", "max_backoff", "expected_delay"),
    [
        ("120", 300, 120.0),
        ("120", 60, 60.0),
        ("-3", 300, 2.0),
        ("1.5", 300, 2.0),
        ("soon", 300, 2.0),
        ("", 300, 2.0),
        (format_datetime(datetime(2001, 1, 1, tzinfo=UTC), usegmt=True), 300, 2.0),
    ],
)
def test_retry_after_is_honoured_when_sane_and_ignored_otherwise(
    api: Api,
    downstream: Downstream,
    worker: Worker,
    retry_after: str,
    max_backoff: int,
    expected_delay: float,
) -> None:
    # Given a target that answers 503 with a Retry-After header
    url = downstream.script("/busy", Reply(503, headers={"Retry-After": retry_after}))
    retry = {"min_backoff_seconds": 2, "max_backoff_seconds": max_backoff}
    task_id = submit(api, http_task(url, retry=retry))

    # When the first attempt runs
    worker.drain()

    # Then the retry waits for Retry-After (capped) or the normal backoff of 2 s
    task = api("GET", f"{TASKS}/{task_id}").json
    assert task["status"] == "RETRY_SCHEDULED"
    assert _first_retry_delay(task) == pytest.approx(expected_delay, abs=0.002)


def test_retry_after_as_a_future_http_date_is_honoured(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a target that asks to come back at a date 200 s from now
    when = datetime.now(UTC) + timedelta(seconds=200)
    header = format_datetime(when, usegmt=True)
    url = downstream.script("/busy-date", Reply(503, headers={"Retry-After": header}))
    task_id = submit(
        api, http_task(url, retry={"min_backoff_seconds": 2, "max_backoff_seconds": 300})
    )

    # When the first attempt runs
    worker.drain()

    # Then the retry is planned for that date (to the second the header carries)
    task = api("GET", f"{TASKS}/{task_id}").json
    planned = datetime.fromisoformat(task["next_attempt_at"])
    assert abs((planned - when.replace(microsecond=0)).total_seconds()) <= 1.0
    assert json.dumps(task)  # the record stays serialisable


def test_a_message_for_an_unknown_task_is_dropped_without_failing_the_batch(
    worker: Worker, queues: Queues
) -> None:
    worker.send_raw(WorkMessage(task_id=str(ULID()), generation=0, attempt=1).model_dump_json())

    result = worker.run_batch()

    assert result is not None
    assert result.failed_ids == set()
    assert queues.total(queues.work_url) == 0


def test_a_valid_json_message_of_the_wrong_shape_is_poison(worker: Worker, queues: Queues) -> None:
    worker.send_raw('{"task": "nope"}')

    result = worker.run_batch()

    assert result is not None
    dead = queues.dead_letters()
    assert result.failed_ids or [d["raw_body"] for d in dead] == ['{"task": "nope"}']
