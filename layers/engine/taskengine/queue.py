"""SQS access: the work queue (with per-message delays) and the dead-letter queue."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from taskengine.errors import DependencyError
from taskengine.models import DeadLetterMessage, WorkMessage

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

MAX_DELAY_SECONDS = 900
_BATCH = 10


def sqs_delay_seconds(wait_seconds: float) -> int:
    """SQS takes whole seconds in 0..900; round up so a message never lands early."""
    return max(0, min(MAX_DELAY_SECONDS, math.ceil(wait_seconds)))


@dataclass(frozen=True)
class Outgoing:
    message: WorkMessage
    delay_seconds: int


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str


class WorkQueue:
    def __init__(self, client: SQSClient, queue_url: str, dead_letter_url: str) -> None:
        self._client = client
        self._url = queue_url
        self._dead_letter_url = dead_letter_url

    def send(self, message: WorkMessage, delay_seconds: int) -> None:
        try:
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=message.model_dump_json(),
                DelaySeconds=delay_seconds,
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"sqs SendMessage failed: {type(error).__name__}") from error

    def send_many(self, outgoing: Sequence[Outgoing]) -> list[Outgoing]:
        """Send in batches of ten; returns the messages SQS did not accept."""
        failed: list[Outgoing] = []
        for start in range(0, len(outgoing), _BATCH):
            chunk = outgoing[start : start + _BATCH]
            entries: list[Any] = [
                {
                    "Id": str(index),
                    "MessageBody": item.message.model_dump_json(),
                    "DelaySeconds": item.delay_seconds,
                }
                for index, item in enumerate(chunk)
            ]
            try:
                response = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (ClientError, BotoCoreError):
                failed.extend(chunk)
                continue
            failed.extend(chunk[int(entry["Id"])] for entry in response.get("Failed", []))
        return failed

    def send_dead_letter(self, message: DeadLetterMessage) -> None:
        try:
            self._client.send_message(
                QueueUrl=self._dead_letter_url, MessageBody=message.model_dump_json()
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(
                f"sqs SendMessage to DLQ failed: {type(error).__name__}"
            ) from error

    def receive_dead_letters(self, visibility_seconds: int) -> list[ReceivedMessage]:
        try:
            response = self._client.receive_message(
                QueueUrl=self._dead_letter_url,
                MaxNumberOfMessages=_BATCH,
                VisibilityTimeout=visibility_seconds,
                WaitTimeSeconds=0,
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"sqs ReceiveMessage failed: {type(error).__name__}") from error
        return [
            ReceivedMessage(m["MessageId"], m["ReceiptHandle"], m["Body"])
            for m in response.get("Messages", [])
        ]

    def delete_dead_letter(self, message: ReceivedMessage) -> None:
        try:
            self._client.delete_message(
                QueueUrl=self._dead_letter_url, ReceiptHandle=message.receipt_handle
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"sqs DeleteMessage failed: {type(error).__name__}") from error

    def release_dead_letter(self, message: ReceivedMessage) -> None:
        """Make a received dead letter visible again at once, for the next reader."""
        try:
            self._client.change_message_visibility(
                QueueUrl=self._dead_letter_url,
                ReceiptHandle=message.receipt_handle,
                VisibilityTimeout=0,
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"sqs ChangeMessageVisibility failed: {error}") from error

    def depths(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for name, url in (("work", self._url), ("dead_letter", self._dead_letter_url)):
            try:
                response = self._client.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed",
                    ],
                )
            except (ClientError, BotoCoreError) as error:
                raise DependencyError(f"sqs GetQueueAttributes failed: {error}") from error
            attributes = response.get("Attributes", {})
            result[name] = {
                "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
                "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
            }
        return result
