"""Requests that once slipped through: odd bodies, secrets in URLs, races with the scheduler."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from harness import (
    Api,
    Clock,
    Downstream,
    LambdaContext,
    Queues,
    Reply,
    Worker,
    http_event,
    http_task,
)

from functions.api.handler import lambda_handler
from taskengine import names, transitions
from taskengine.dispatcher import Dispatcher
from taskengine.models import AttemptOutcome, AttemptRecord, WorkMessage

TASKS = "/v1/tasks"


def problem(response: Any) -> dict[str, Any]:
    assert 400 <= response.status < 500, response.text
    assert response.content_type == "application/problem+json"
    return response.json  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("raw_body", "is_base64"),
    [
        ('{"target": ' + "[" * 5000 + "]" * 5000 + "}", False),
        ('{"delay_seconds": ' + "9" * 5000 + "}", False),
        (base64.b64encode(b'{"target": "\xff\xfe"}').decode(), True),
    ],
    ids=["nested-too-deep", "integer-of-5000-digits", "not-utf-8"],
)
def test_an_unreadable_body_is_a_problem_naming_the_body(
    api: Api, stack: Any, raw_body: str, is_base64: bool
) -> None:
    event = http_event("POST", TASKS, raw_body=raw_body)
    event["isBase64Encoded"] = is_base64

    response = lambda_handler(event, LambdaContext())

    assert response["statusCode"] == 422
    assert json.loads(response["body"])["field"] == "body"


def test_a_body_that_is_not_json_is_unsupported_media(api: Api, downstream: Downstream) -> None:
    body = http_task(downstream.url("/x"))

    response = api("POST", TASKS, body=body, headers={"content-type": "text/plain"})

    assert response.status == 415
    assert problem(response)["field"] == "header.Content-Type"


def test_the_json_media_type_is_accepted_in_any_case(api: Api, downstream: Downstream) -> None:
    body = http_task(downstream.url("/x"))

    response = api("POST", TASKS, body=body, headers={"content-type": "APPLICATION/JSON"})

    assert response.status == 202, response.text


def test_a_schedule_beyond_a_century_is_refused_naming_schedule_at(
    api: Api, downstream: Downstream
) -> None:
    body = http_task(downstream.url("/x"), schedule_at="9999-12-31T23:59:59Z")

    response = api("POST", TASKS, body=body)

    assert problem(response)["field"] == "schedule_at"


def test_a_body_over_the_limit_in_bytes_is_refused_naming_the_body(
    api: Api, downstream: Downstream
) -> None:
    # 150,000 characters, but 450,000 bytes of UTF-8: more than the limit and than DynamoDB takes
    body = http_task(downstream.url("/x"), target={"body": "一" * 150_000})

    response = api("POST", TASKS, body=body)

    assert response.status == 422
    assert problem(response)["field"] == "target.body"


def test_a_secret_in_the_query_reaches_the_target_but_is_never_stored_or_shown(
    api: Api, downstream: Downstream, worker: Worker, dynamodb: Any
) -> None:
    # Given a target URL carrying an API key
    url = downstream.url("/q") + "?api_key=qs-7c1e2f&page=2"
    submitted = api("POST", TASKS, body=http_task(url))

    # When it runs and is read back
    worker.drain()
    read = api("GET", f"{TASKS}/{submitted.json['task_id']}")

    # Then the downstream got the real URL, and nothing stored or returned holds the key
    assert [call.path for call in downstream.calls] == ["/q?api_key=qs-7c1e2f&page=2"]
    assert "qs-7c1e2f" not in submitted.text + read.text
    items = dynamodb.scan(TableName=names.TABLE_NAME)["Items"]
    assert b"qs-7c1e2f" not in repr(items).encode()


def test_a_retry_with_a_refreshed_token_is_the_same_request(
    api: Api, downstream: Downstream
) -> None:
    # Given a task submitted with an Idempotency-Key and a bearer token
    url = downstream.url("/x")
    first = http_task(url, target={"headers": {"Authorization": "Bearer old"}})
    created = api("POST", TASKS, body=first, headers={"Idempotency-Key": "refresh-1"})

    # When the client retries after refreshing its token
    second = http_task(url, target={"headers": {"Authorization": "Bearer new"}})
    retried = api("POST", TASKS, body=second, headers={"Idempotency-Key": "refresh-1"})

    # Then it gets the same task, not a conflict
    assert retried.status == 200, retried.text
    assert retried.json["task_id"] == created.json["task_id"]


def test_a_task_id_reads_the_same_in_lower_case(api: Api, downstream: Downstream) -> None:
    task_id = api("POST", TASKS, body=http_task(downstream.url("/x"))).json["task_id"]

    response = api("GET", f"{TASKS}/{task_id.lower()}")

    assert response.status == 200
    assert response.json["task_id"] == task_id


def test_a_late_result_does_not_overwrite_the_record_of_a_lost_attempt(
    api: Api, downstream: Downstream, worker: Worker, make_engine: Any
) -> None:
    # Given an attempt claimed by a worker that then went quiet past its lease
    task_id = api("POST", TASKS, body=http_task(downstream.url("/late"))).json["task_id"]
    for message in worker.receive():
        worker.delete(message)
    clock = Clock(datetime.now(UTC))
    engine = make_engine(clock=clock)
    claim = transitions.claim(
        generation=0,
        attempt=1,
        now=clock.now,
        latest_due=clock.now + timedelta(seconds=2),
        lease_until=clock.now + timedelta(seconds=90),
        lease_token="quiet-worker",
    )
    engine.store.update_state(task_id, claim)

    # When the scheduler records the attempt as lost, and the worker's result arrives after
    clock.now += timedelta(minutes=10)
    assert Dispatcher(engine).run_once().recovered == 1
    late = AttemptRecord(
        number=1,
        generation=0,
        started_at=clock.now - timedelta(minutes=10),
        finished_at=clock.now,
        outcome=AttemptOutcome.SUCCEEDED,
        status_code=200,
    )
    written = engine.store.put_attempt(task_id, late, clock.now + timedelta(days=1))

    # Then the first record stands, and the history agrees with the task's state
    assert written is False
    task = api("GET", f"{TASKS}/{task_id}").json
    assert task["status"] == "RETRY_SCHEDULED"
    assert [a["outcome"] for a in task["attempts"]] == ["lease_expired"]


def test_a_message_the_queue_moved_to_the_dlq_is_redriven(
    api: Api, downstream: Downstream, worker: Worker, queues: Queues, sqs: Any
) -> None:
    # Given a dead-lettered task whose work message the queue's redrive policy also moved
    url = downstream.script("/moved", Reply(404), Reply(200))
    task_id = api("POST", TASKS, body=http_task(url)).json["task_id"]
    worker.drain()
    for letter in queues.dead_letters():
        assert letter["task_id"] == task_id
    while sqs.receive_message(QueueUrl=queues.dead_letter_url, WaitTimeSeconds=0).get("Messages"):
        pass
    moved = WorkMessage(task_id=task_id, generation=0, attempt=1).model_dump_json()
    sqs.send_message(QueueUrl=queues.dead_letter_url, MessageBody=moved)

    # When an operator redrives
    response = api("POST", "/v1/admin/dead-letters/redrive", body={"limit": 5})

    # Then the task is replayed from that message
    assert response.status == 200, response.text
    assert response.json["replayed"] == [task_id]


def test_the_scheduler_goes_on_when_one_task_fails(
    api: Api, downstream: Downstream, worker: Worker, make_engine: Any
) -> None:
    # Given two tasks whose messages were lost
    ids = [api("POST", TASKS, body=http_task(downstream.url("/x"))).json["task_id"] for _ in "ab"]
    for message in worker.receive():
        worker.delete(message)

    # When the scheduler runs after the redispatch time
    engine = make_engine(clock=Clock(datetime.now(UTC) + timedelta(minutes=10)))
    report = Dispatcher(engine).run_once()

    # Then both are sent again
    assert report.dispatched == len(ids)


def test_a_recorded_success_stands_when_the_worker_could_not_update_the_task(
    api: Api, downstream: Downstream, worker: Worker, make_engine: Any
) -> None:
    # Given a worker that recorded its attempt as succeeded, then died before updating the task
    task_id = api("POST", TASKS, body=http_task(downstream.url("/done"))).json["task_id"]
    for message in worker.receive():
        worker.delete(message)
    clock = Clock(datetime.now(UTC))
    engine = make_engine(clock=clock)
    claim = transitions.claim(
        generation=0,
        attempt=1,
        now=clock.now,
        latest_due=clock.now + timedelta(seconds=2),
        lease_until=clock.now + timedelta(seconds=90),
        lease_token="dying-worker",
    )
    engine.store.update_state(task_id, claim)
    done = AttemptRecord(
        number=1,
        generation=0,
        started_at=clock.now,
        finished_at=clock.now,
        outcome=AttemptOutcome.SUCCEEDED,
        status_code=200,
    )
    assert engine.store.put_attempt(task_id, done, clock.now + timedelta(days=1))

    # When the scheduler finds the lease expired
    clock.now += timedelta(minutes=10)
    assert Dispatcher(engine).run_once().recovered == 1

    # Then the task completes from the recorded outcome; the call is not made again
    task = api("GET", f"{TASKS}/{task_id}").json
    assert task["status"] == "COMPLETED"
    assert [a["outcome"] for a in task["attempts"]] == ["succeeded"]
    assert downstream.calls_to("/done") == []


def test_a_get_with_a_stray_content_type_is_served(api: Api, downstream: Downstream) -> None:
    task_id = api("POST", TASKS, body=http_task(downstream.url("/x"))).json["task_id"]

    response = api("GET", f"{TASKS}/{task_id}", headers={"content-type": "text/plain"})

    assert response.status == 200


def test_a_body_nested_too_deep_to_validate_is_refused(api: Api, downstream: Downstream) -> None:
    nested: Any = "leaf"
    for _ in range(300):
        nested = [nested]
    body = http_task(downstream.url("/x"), target={"body": nested})

    response = api("POST", TASKS, body=body)

    assert response.status == 422
    assert problem(response)["field"] == "body"


def test_an_ordinary_query_parameter_still_tells_requests_apart(
    api: Api, downstream: Downstream
) -> None:
    # Given a task submitted with a key and an ordinary parameter whose name contains "key"
    first = http_task(downstream.url("/x") + "?keyword=red")
    api("POST", TASKS, body=first, headers={"Idempotency-Key": "kw-1"})

    # When the same key comes with another value of that parameter
    second = http_task(downstream.url("/x") + "?keyword=blue")
    response = api("POST", TASKS, body=second, headers={"Idempotency-Key": "kw-1"})

    # Then it is a different request: a conflict
    assert response.status == 409
