"""The SQS poller: Lambda's record shape and partial batch handling, against a moto server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from taskengine_local.poller import SqsPoller, failed_message_ids
from taskengine_local.resources import MAX_RECEIVE_COUNT, Resources, create_resources


class StandInWorker:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail_bodies: set[str] = set()
        self.crash = False

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if self.crash:
            raise RuntimeError("worker crashed")
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record in event["Records"]
                if record["body"] in self.fail_bodies
            ]
        }


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def resources(moto_url: str) -> Resources:
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    # A zero visibility timeout makes a failed message visible again at once, so redelivery
    # is observable without waiting.
    return create_resources(moto_url, visibility_timeout_seconds=0)


@pytest.fixture
def sqs(moto_url: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def worker() -> StandInWorker:
    return StandInWorker()


@pytest.fixture
def poller(sqs: Any, resources: Resources, worker: StandInWorker) -> SqsPoller:
    return SqsPoller(
        sqs,
        queue_url=resources.work_queue_url,
        queue_arn=resources.work_queue_arn,
        handler=worker,
        function_timeout_seconds=30,
        wait_seconds=0,
    )


def _depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_a_record_has_lambdas_sqs_event_shape(
    sqs: Any, resources: Resources, poller: SqsPoller, worker: StandInWorker
) -> None:
    # Given a message with a string attribute on the work queue
    body = '{"task_id": "t1", "generation": 0, "attempt": 1}'
    sent = sqs.send_message(
        QueueUrl=resources.work_queue_url,
        MessageBody=body,
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "attempt"}},
    )

    # When the poller receives it
    assert poller.poll_once() == 1

    # Then the worker gets one record shaped as Lambda shapes it
    (record,) = worker.events[0]["Records"]
    assert record["messageId"] == sent["MessageId"]
    assert record["receiptHandle"]
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == resources.work_queue_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"].isdigit()
    assert record["attributes"]["ApproximateFirstReceiveTimestamp"].isdigit()
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "attempt",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }


def test_a_batch_holds_at_most_ten_records(
    sqs: Any, resources: Resources, poller: SqsPoller, worker: StandInWorker
) -> None:
    # Given twelve messages
    for number in range(12):
        sqs.send_message(QueueUrl=resources.work_queue_url, MessageBody=str(number))

    # When the poller receives until the queue is empty
    while poller.poll_once():
        pass

    # Then no batch exceeded ten records and every message was delivered
    sizes = [len(event["Records"]) for event in worker.events]
    assert max(sizes) <= 10
    assert sum(sizes) == 12


def test_succeeded_records_are_deleted_and_failed_ones_kept(
    sqs: Any, resources: Resources, poller: SqsPoller, worker: StandInWorker
) -> None:
    # Given two messages, one of which the worker reports as failed
    sqs.send_message(QueueUrl=resources.work_queue_url, MessageBody="ok")
    sqs.send_message(QueueUrl=resources.work_queue_url, MessageBody="bad")
    worker.fail_bodies = {"bad"}

    # When the poller runs one batch at a time until the ok message is settled
    while not any(r["body"] == "ok" for e in worker.events for r in e["Records"]):
        poller.poll_once()

    # Then only the failed message is still on the queue, and it comes back
    assert _depth(sqs, resources.work_queue_url) == 1
    redelivered = sqs.receive_message(
        QueueUrl=resources.work_queue_url, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [message["Body"] for message in redelivered] == ["bad"]


def test_a_crashing_worker_leaves_the_whole_batch_on_the_queue(
    sqs: Any, resources: Resources, poller: SqsPoller, worker: StandInWorker
) -> None:
    # Given two messages and a worker that raises
    sqs.send_message(QueueUrl=resources.work_queue_url, MessageBody="a")
    sqs.send_message(QueueUrl=resources.work_queue_url, MessageBody="b")
    worker.crash = True

    # When the poller delivers them
    received = 0
    while received < 2:
        received += poller.poll_once()

    # Then nothing was deleted
    assert _depth(sqs, resources.work_queue_url) == 2


def test_a_message_that_keeps_failing_moves_to_the_dead_letter_queue(
    sqs: Any, resources: Resources, poller: SqsPoller, worker: StandInWorker
) -> None:
    # Given a message the worker always fails
    sqs.send_message(QueueUrl=resources.work_queue_url, MessageBody="poison")
    worker.fail_bodies = {"poison"}

    # When the poller has received it maxReceiveCount times and polls once more
    deliveries = 0
    while deliveries < MAX_RECEIVE_COUNT:
        deliveries += poller.poll_once()
    assert poller.poll_once() == 0

    # Then the redrive policy has moved it to the dead-letter queue
    assert _depth(sqs, resources.work_queue_url) == 0
    moved = sqs.receive_message(QueueUrl=resources.dead_letter_queue_url)["Messages"]
    assert [message["Body"] for message in moved] == ["poison"]


def test_no_response_means_the_whole_batch_succeeded() -> None:
    assert failed_message_ids(None, ["m1", "m2"]) == set()


def test_listed_identifiers_are_the_failed_ones() -> None:
    result = {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert failed_message_ids(result, ["m1", "m2"]) == {"m2"}


def test_an_unknown_identifier_fails_the_whole_batch() -> None:
    # As in Lambda: a response naming a message outside the batch is treated as a total failure
    result = {"batchItemFailures": [{"itemIdentifier": "elsewhere"}]}
    assert failed_message_ids(result, ["m1", "m2"]) == {"m1", "m2"}
