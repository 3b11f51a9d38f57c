"""Feed the worker handler from the work queue as Lambda's SQS event source mapping does.

Batches of up to ten records in Lambda's event shape; partial batch responses decide which
messages are deleted. Failed messages stay on the queue, come back after the visibility
timeout and, past maxReceiveCount, are moved to the dead-letter queue by the redrive policy.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from taskengine_local import aws_constants
from taskengine_local.lambda_context import LocalLambdaContext

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient
    from types_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef, MessageTypeDef

LambdaHandler = Callable[[dict[str, Any], Any], Any]

MAX_BATCH_SIZE = 10
FUNCTION_NAME = "taskengine-worker"

logger = logging.getLogger(__name__)


def to_sqs_record(message: MessageTypeDef, queue_arn: str) -> dict[str, Any]:
    """One record of a Lambda SQS event, from a ReceiveMessage result."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": aws_constants.REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [_b64(item) for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _b64(value["BinaryValue"])
    return attribute


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def failed_message_ids(result: Any, batch_ids: Sequence[str]) -> set[str]:
    """The messages to keep, read as Lambda reads a partial batch response.

    No response or no failures means the whole batch succeeded; an identifier that is missing
    or not in the batch makes Lambda treat the whole batch as failed.
    """
    if not isinstance(result, Mapping):
        return set()
    failures = result.get("batchItemFailures") or []
    identifiers = {
        item.get("itemIdentifier") if isinstance(item, Mapping) else None for item in failures
    }
    if not identifiers <= set(batch_ids):
        return set(batch_ids)
    return {str(identifier) for identifier in identifiers}


class SqsPoller:
    """Long-polls one queue and invokes one handler per received batch."""

    def __init__(
        self,
        sqs: SQSClient,
        *,
        queue_url: str,
        queue_arn: str,
        handler: LambdaHandler,
        function_timeout_seconds: float,
        wait_seconds: int = 1,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._handler = handler
        self._timeout_seconds = function_timeout_seconds
        # Short long-polls keep shutdown prompt; an idle queue costs one request per second.
        self._wait_seconds = wait_seconds

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
            except (BotoCoreError, ClientError):
                logger.warning("work queue poll failed", exc_info=True)
                stop.wait(1.0)

    def poll_once(self) -> int:
        """Receive one batch, run it and settle it; the number of records received."""
        messages = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=MAX_BATCH_SIZE,
            WaitTimeSeconds=self._wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if messages:
            self._settle(messages, self._invoke(messages))
        return len(messages)

    def _invoke(self, messages: Sequence[MessageTypeDef]) -> set[str]:
        event = {"Records": [to_sqs_record(message, self._queue_arn) for message in messages]}
        context = LocalLambdaContext(FUNCTION_NAME, timeout_seconds=self._timeout_seconds)
        batch_ids = [message["MessageId"] for message in messages]
        try:
            result = self._handler(event, context)
        except Exception:
            # A crashed invocation fails the whole batch: every message comes back later.
            logger.exception("worker handler raised")
            return set(batch_ids)
        return failed_message_ids(result, batch_ids)

    def _settle(self, messages: Sequence[MessageTypeDef], failed: set[str]) -> None:
        done: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(messages)
            if message["MessageId"] not in failed
        ]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=done)
