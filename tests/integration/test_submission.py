"""Submitting tasks through the API handler: idempotency, exact bodies, delays."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from harness import Api, Clock, Downstream, Queues, Worker, http_task

from taskengine.dispatcher import Dispatcher
from taskengine.models import WorkMessage

TASKS = "/v1/tasks"


def test_two_submits_without_a_key_and_different_bodies_are_two_tasks(
    api: Api, downstream: Downstream, queues: Queues
) -> None:
    # Given two different task bodies
    url = downstream.url("/hook")

    # When both are submitted without an Idempotency-Key
    first = api("POST", TASKS, body=http_task(url, target={"body": {"n": 1}}))
    second = api("POST", TASKS, body=http_task(url, target={"body": {"n": 2}}))

    # Then each is a new task with its own message
    assert (first.status, second.status) == (202, 202)
    assert first.json["task_id"] != second.json["task_id"]
    assert queues.total(queues.work_url) == 2


def test_the_same_key_and_an_equivalent_body_return_the_same_task(
    api: Api, downstream: Downstream, queues: Queues
) -> None:
    # Given a task submitted with a key
    body = http_task(downstream.url("/hook"), target={"body": {"a": 1, "b": [1, 2]}})
    first = api("POST", TASKS, body=body, headers={"Idempotency-Key": "order-1"})

    # When the same JSON is sent again with other key order and spacing
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=3)
    again = api("POST", TASKS, raw_body=reordered, headers={"Idempotency-Key": "order-1"})

    # Then the client gets the first task back, and nothing new is queued
    assert first.status == 202
    assert again.status == 200
    assert again.json["task_id"] == first.json["task_id"]
    assert queues.total(queues.work_url) == 1


def test_header_names_in_another_case_and_a_padded_key_are_the_same_request(
    api: Api, downstream: Downstream, queues: Queues
) -> None:
    # Given a task submitted with a key and a header
    body = http_task(downstream.url("/hook"), target={"headers": {"X-Tenant-Ref": "t-1"}})
    first = api("POST", TASKS, body=body, headers={"Idempotency-Key": "order-9"})

    # When it is sent again with the header name in lower case and the key padded
    again_body = http_task(downstream.url("/hook"), target={"headers": {"x-tenant-ref": "t-1"}})
    again = api("POST", TASKS, body=again_body, headers={"Idempotency-Key": " order-9\t"})

    # Then it is the same task, and nothing new is queued
    assert again.status == 200
    assert again.json["task_id"] == first.json["task_id"]
    assert queues.total(queues.work_url) == 1


def test_the_same_key_with_another_body_is_a_conflict_and_queues_nothing(
    api: Api, downstream: Downstream, queues: Queues
) -> None:
    # Given a task submitted with a key
    url = downstream.url("/hook")
    api("POST", TASKS, body=http_task(url), headers={"Idempotency-Key": "order-2"})
    queued = queues.total(queues.work_url)

    # When another body comes with the same key
    clash = api(
        "POST",
        TASKS,
        body=http_task(url, target={"body": {"n": 99}}),
        headers={"Idempotency-Key": "order-2"},
    )

    # Then it is refused as a conflict naming the header, and nothing more is queued
    assert clash.status == 409
    assert clash.content_type == "application/problem+json"
    assert clash.json["field"] == "header.Idempotency-Key"
    assert queues.total(queues.work_url) == queued


def test_the_key_is_checked_in_dynamodb_when_redis_forgot_it(
    api: Api, downstream: Downstream, redis_client: redis.Redis, queues: Queues
) -> None:
    # Given a task submitted with a key, and Redis flushed afterwards
    url = downstream.url("/hook")
    first = api("POST", TASKS, body=http_task(url), headers={"Idempotency-Key": "order-3"})
    redis_client.flushdb()

    # When the same request and then a different one come with that key
    again = api("POST", TASKS, body=http_task(url), headers={"Idempotency-Key": "order-3"})
    other = api(
        "POST",
        TASKS,
        body=http_task(url, target={"body": {"n": 2}}),
        headers={"Idempotency-Key": "order-3"},
    )

    # Then DynamoDB still answers: the same task, then a conflict
    assert again.status == 200
    assert again.json["task_id"] == first.json["task_id"]
    assert other.status == 409
    assert queues.total(queues.work_url) == 1


def test_a_lower_case_idempotency_key_header_is_the_same_header(
    api: Api, downstream: Downstream
) -> None:
    # Given a task submitted with the header in lower case
    body = http_task(downstream.url("/hook"))
    first = api("POST", TASKS, body=body, headers={"idempotency-key": "order-4"})

    # When it is sent again with the canonical spelling
    again = api("POST", TASKS, body=body, headers={"Idempotency-Key": "order-4"})

    # Then both name the same task
    assert first.json["idempotency_key"] == "order-4"
    assert again.status == 200
    assert again.json["task_id"] == first.json["task_id"]


def test_floats_are_stored_returned_and_delivered_exactly(
    api: Api, downstream: Downstream, worker: Worker
) -> None:
    # Given a body with floats that a lossy encoding would change
    payload = {"price": 12.5, "epsilon": 1e-7, "third": 0.1 + 0.2, "big": 1.7976931348623157e308}
    url = downstream.url("/floats")
    submitted = api("POST", TASKS, body=http_task(url, target={"body": payload}))

    # When the task is read back and run
    read = api("GET", f"{TASKS}/{submitted.json['task_id']}")
    worker.drain()

    # Then the API and the downstream see the very same numbers
    assert read.json["target"]["body"] == payload
    [call] = downstream.calls_to("/floats")
    assert call.json == payload


def test_nan_or_infinity_in_the_body_is_refused(api: Api, downstream: Downstream) -> None:
    url = downstream.url("/hook")
    for token in ("NaN", "Infinity", "-Infinity"):
        raw = json.dumps(http_task(url, target={"body": {"n": float(token)}}))

        response = api("POST", TASKS, raw_body=raw)

        assert response.status == 422, token
        assert response.json["field"] == "target.body"


def test_a_delay_of_many_hours_is_accepted_and_dispatched_only_when_due(
    api: Api, downstream: Downstream, queues: Queues, make_engine: Any
) -> None:
    # Given a task due in 54524 s (beyond SQS's 15-minute delay ceiling)
    submitted = api("POST", TASKS, body=http_task(downstream.url("/later"), delay_seconds=54_524))
    task_id = submitted.json["task_id"]
    due = datetime.fromisoformat(submitted.json["next_attempt_at"])

    # Then it is accepted but nothing is queued yet
    assert submitted.status == 202
    assert queues.total(queues.work_url) == 0

    # When the scheduler runs an hour before it is due, nothing happens
    clock = Clock(due - timedelta(hours=1))
    dispatcher = Dispatcher(make_engine(clock=clock))
    assert dispatcher.run_once().dispatched == 0

    # When the scheduler runs 40 s before it is due
    clock.now = due - timedelta(seconds=40)
    report = dispatcher.run_once()

    # Then its first attempt is sent with a delay that lands it on time
    assert report.dispatched == 1
    [outgoing] = report.outgoing
    assert outgoing.message == WorkMessage(task_id=task_id, generation=0, attempt=1)
    assert outgoing.delay_seconds == 40
    assert queues.counts(queues.work_url)["delayed"] == 1


def test_a_task_due_now_is_sent_by_the_scheduler_when_its_message_was_lost(
    api: Api, downstream: Downstream, queues: Queues, make_engine: Any, worker: Worker
) -> None:
    # Given a task whose first message was lost (received and dropped)
    submitted = api("POST", TASKS, body=http_task(downstream.url("/lost")))
    for message in worker.receive():
        worker.delete(message)

    # When the scheduler runs after the redispatch time
    now = datetime.now(UTC) + timedelta(minutes=10)
    report = Dispatcher(make_engine(clock=Clock(now))).run_once()

    # Then the attempt is sent again and runs
    assert report.dispatched == 1
    worker.drain()
    assert len(downstream.calls_to("/lost")) == 1
    read = api("GET", f"{TASKS}/{submitted.json['task_id']}")
    assert read.json["status"] == "COMPLETED"


def test_a_negative_delay_is_refused_naming_the_field(api: Api, downstream: Downstream) -> None:
    response = api("POST", TASKS, body=http_task(downstream.url("/hook"), delay_seconds=-1))

    assert response.status == 422
    assert response.json["field"] == "delay_seconds"


def test_a_cancelled_far_future_task_is_never_dispatched(
    api: Api, downstream: Downstream, queues: Queues, make_engine: Any
) -> None:
    # Given a far-future task that was cancelled
    submitted = api("POST", TASKS, body=http_task(downstream.url("/never"), delay_seconds=54_524))
    api("POST", f"{TASKS}/{submitted.json['task_id']}/cancel")

    # When the scheduler runs at its due time
    due = datetime.fromisoformat(submitted.json["next_attempt_at"])
    report = Dispatcher(make_engine(clock=Clock(due))).run_once()

    # Then nothing is sent
    assert report.dispatched == 0
    assert queues.total(queues.work_url) == 0


def test_a_schedule_in_the_past_runs_now(api: Api, downstream: Downstream, worker: Worker) -> None:
    submitted = api(
        "POST",
        TASKS,
        body=http_task(downstream.url("/past"), schedule_at="2001-01-01T00:00:00Z"),
    )

    worker.drain()

    assert submitted.status == 202
    assert len(downstream.calls_to("/past")) == 1


def test_the_scheduler_handler_reports_its_run(scheduler: Any) -> None:
    report = scheduler()

    assert report == {"dispatched": 0, "recovered": 0, "poisoned": 0, "lag_ms": 0}
