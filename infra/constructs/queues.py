"""The work queue the worker consumes and the dead-letter queue behind it."""

from __future__ import annotations

import math

import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.errors import EngineConfigError
from taskengine import names

# AWS's guidance for SQS event sources: the queue's visibility timeout is at least six times
# the function timeout plus the batching window, so retries of a throttled batch stay hidden.
VISIBILITY_TIMEOUT_FACTOR = 6
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600


def required_visibility_timeout(
    consumer_timeout: cdk.Duration, batching_window: cdk.Duration
) -> cdk.Duration:
    """The smallest visibility timeout that is safe for a consumer with this timeout."""
    seconds = VISIBILITY_TIMEOUT_FACTOR * consumer_timeout.to_seconds() + (
        batching_window.to_seconds()
    )
    return cdk.Duration.seconds(math.ceil(seconds))


def check_visibility_timeout(
    visibility_timeout: cdk.Duration,
    *,
    consumer_timeout: cdk.Duration,
    batching_window: cdk.Duration,
) -> None:
    """Raise EngineConfigError unless the visibility timeout fits the consumer and SQS."""
    required = required_visibility_timeout(consumer_timeout, batching_window).to_seconds()
    actual = visibility_timeout.to_seconds()
    if actual < required:
        raise EngineConfigError(
            f"work queue visibility timeout {actual:g}s is below {required:g}s "
            f"({VISIBILITY_TIMEOUT_FACTOR} x worker timeout {consumer_timeout.to_seconds():g}s "
            f"+ batching window {batching_window.to_seconds():g}s): lower the worker timeout "
            "or raise the visibility timeout"
        )
    if actual > MAX_VISIBILITY_TIMEOUT_SECONDS:
        raise EngineConfigError(
            f"work queue visibility timeout {actual:g}s exceeds SQS's maximum of "
            f"{MAX_VISIBILITY_TIMEOUT_SECONDS}s: lower the worker timeout"
        )


class EngineQueues(Construct):
    """Work queue + DLQ, both encrypted (SQS-managed SSE) and refusing non-TLS requests.

    A message the worker fails to process `max_receive_count` times moves to the DLQ. The
    visibility timeout defaults to the smallest safe value for the consumer and is checked
    when given explicitly.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        consumer_timeout: cdk.Duration,
        batching_window: cdk.Duration,
        max_receive_count: int,
        visibility_timeout: cdk.Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if max_receive_count < 1:
            raise EngineConfigError("max_receive_count must be at least 1")
        self.visibility_timeout = visibility_timeout or required_visibility_timeout(
            consumer_timeout, batching_window
        )
        check_visibility_timeout(
            self.visibility_timeout,
            consumer_timeout=consumer_timeout,
            batching_window=batching_window,
        )
        # cdk-nag's SQS3 (a queue without a DLQ) passes this queue: the work queue's redrive
        # policy names it as a dead-letter queue.
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetter",
            queue_name=f"{name_prefix}-{names.DEAD_LETTER_QUEUE_NAME}",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.work_queue = sqs.Queue(
            self,
            "Work",
            queue_name=f"{name_prefix}-{names.WORK_QUEUE_NAME}",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=self.visibility_timeout,
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
        )
