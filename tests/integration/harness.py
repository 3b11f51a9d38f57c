"""Helpers of the integration tests: handler events, a worker loop, a scripted downstream."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import boto3

from functions.worker.handler import lambda_handler as worker_handler
from taskengine import names, schema

REGION = "us-east-1"
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT_SECONDS = 30
ACCOUNT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:taskengine"


def redis_db() -> int:
    """14 for the first (or only) worker, 15 for the second: never a database in use."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return 14 + int(worker.removeprefix("gw") or 0) % 2


class LambdaContext:
    function_name = "taskengine-test"
    function_version = "$LATEST"
    invoked_function_arn = ACCOUNT_ARN
    memory_limit_in_mb = 512
    aws_request_id = "test-request"
    log_group_name = "/aws/lambda/taskengine-test"
    log_stream_name = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# -- the AWS side ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    endpoint_url: str
    work_queue_url: str
    dead_letter_queue_url: str
    redis_db: int

    @property
    def redis_url(self) -> str:
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}"

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "TASKENGINE_LOCAL_MODE": "true",
            "TASKENGINE_ALLOW_LOOPBACK_TARGETS": "true",
            "TASKENGINE_REDIS_URL": self.redis_url,
            "TASKENGINE_WORK_QUEUE_URL": self.work_queue_url,
            "TASKENGINE_DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
            "TASKENGINE_REDISPATCH_AFTER_SECONDS": "120",
            "POWERTOOLS_SERVICE_NAME": "taskengine",
            "POWERTOOLS_METRICS_NAMESPACE": "TaskEngine",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_DEV": "false",
        }


def aws_client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_queues(endpoint_url: str) -> tuple[str, str]:
    """The work queue (redriving to the DLQ after MAX_RECEIVE_COUNT receives) and the DLQ."""
    sqs = aws_client("sqs", endpoint_url)
    dlq_url = sqs.create_queue(QueueName=names.DEAD_LETTER_QUEUE_NAME)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {
        "deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"],
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }
    work_url = sqs.create_queue(
        QueueName=names.WORK_QUEUE_NAME,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return work_url, dlq_url


def create_resources(endpoint_url: str) -> tuple[str, str]:
    table = schema.create_table_request(names.TABLE_NAME)
    aws_client("dynamodb", endpoint_url).create_table(**table)
    kms = aws_client("kms", endpoint_url)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=names.HEADER_KEY_ALIAS, TargetKeyId=key_id)
    return create_queues(endpoint_url)


def empty_resources(endpoint_url: str, queue_urls: tuple[str, ...]) -> None:
    """Delete every item and message; cheaper than recreating the table and the key.

    The queues are recreated (their URLs stay the same): PurgeQueue allows one call a minute.
    """
    sqs = aws_client("sqs", endpoint_url)
    for url in queue_urls:
        sqs.delete_queue(QueueUrl=url)
    if create_queues(endpoint_url) != queue_urls:
        raise AssertionError("queue URLs changed when the queues were recreated")
    dynamodb = aws_client("dynamodb", endpoint_url)
    keys = [
        {names.PK: item[names.PK], names.SK: item[names.SK]}
        for page in dynamodb.get_paginator("scan").paginate(
            TableName=names.TABLE_NAME, ProjectionExpression="pk, sk"
        )
        for item in page["Items"]
    ]
    for start in range(0, len(keys), 25):
        requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]
        dynamodb.batch_write_item(RequestItems={names.TABLE_NAME: requests})


# -- calling the handlers --------------------------------------------------------------------


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def content_type(self) -> str:
        return {k.lower(): v for k, v in self.headers.items()}.get("content-type", "")


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    user_arn: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2) event, as the deployed API sends it."""
    text = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api",
        "domainName": "api.local",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "pytest",
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": "$default",
        "stage": "$default",
        "time": "03/Dec/2026:18:00:00 +0000",
        "timeEpoch": 0,
    }
    if user_arn is not None:
        request_context["authorizer"] = {"iam": {"userArn": user_arn}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": request_context,
        "body": text,
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
    return event


Api = Callable[..., ApiResponse]


@dataclass
class BatchResult:
    message_ids: list[str]
    failed_ids: set[str]


class Worker:
    """Feeds the worker handler as Lambda's SQS event source mapping does."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def receive(self) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        return list(response.get("Messages", []))

    def delete(self, message: dict[str, Any]) -> None:
        self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])

    def send_raw(self, body: str) -> None:
        self._sqs.send_message(QueueUrl=self._url, MessageBody=body)

    def run_messages(self, messages: list[dict[str, Any]]) -> BatchResult:
        """Invoke the handler with these messages, delete what it did not report as failed."""
        event = {"Records": [_record(message) for message in messages]}
        response = worker_handler(event, LambdaContext())
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])
        return BatchResult([m["MessageId"] for m in messages], failed)

    def run_batch(self) -> BatchResult | None:
        messages = self.receive()
        return self.run_messages(messages) if messages else None

    def drain(self, max_batches: int = 20) -> int:
        """Run batches until no message is visible; returns how many batches ran."""
        for count in range(max_batches):
            if self.run_batch() is None:
                return count
        raise AssertionError(f"work queue still busy after {max_batches} batches")


def _record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:taskengine-work",
        "awsRegion": REGION,
    }


# -- queue inspection ------------------------------------------------------------------------


class Queues:
    def __init__(self, sqs: Any, stack: Stack) -> None:
        self._sqs = sqs
        self.work_url = stack.work_queue_url
        self.dead_letter_url = stack.dead_letter_queue_url

    def counts(self, url: str) -> dict[str, int]:
        attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"
        ]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
        }

    def total(self, url: str) -> int:
        return sum(self.counts(url).values())

    def dead_letters(self) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        return [json.loads(message["Body"]) for message in response.get("Messages", [])]


# -- engines with a controllable clock -------------------------------------------------------


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


# -- the downstream service ------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get(name.lower())


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class Downstream:
    """A local HTTP service with scripted replies per path; records every call it gets.

    A path answers with its replies in order and repeats the last one; unknown paths get 200.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._script: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def script(self, path: str, *replies: Reply) -> str:
        self._script[path] = list(replies)
        return self.url(path)

    def calls_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._script.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _reply(self, call: Call) -> Reply:
        with self._lock:
            self.calls.append(call)
            replies = self._script.get(call.path)
            if not replies:
                return Reply()
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        downstream = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = downstream._reply(Call(self.command, self.path, dict(self.headers), body))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


# -- task bodies -----------------------------------------------------------------------------


def http_task(url: str, **extra: Any) -> dict[str, Any]:
    """A submit body for an HTTP task that retries at once (no backoff, no jitter)."""
    retry = {"max_attempts": 3, "min_backoff_seconds": 0, "max_backoff_seconds": 0}
    retry.update(extra.pop("retry", {}))
    retry["jitter"] = "none"
    target = {"type": "http", "url": url, "method": "POST", "body": {"n": 1}}
    target.update(extra.pop("target", {}))
    return {"target": target, "retry": retry, **extra}
