"""SQS-triggered worker: runs the attempts of a batch concurrently, reports partial failures."""

from __future__ import annotations

import asyncio
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from taskengine.engine import default_engine
from taskengine.models import DeadLetterMessage, WorkMessage
from taskengine.names import Metric
from taskengine.observability import count, logger, metrics, tracer
from taskengine.runner import AttemptRunner

processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
_RAW_BODY_LIMIT = 2048


def handle_record(record: SQSRecord, remaining_seconds: float) -> None:
    engine = default_engine()
    try:
        message = WorkMessage.model_validate_json(record.body)
    except ValidationError:
        # A body that will never parse cannot succeed on redelivery: park it in the DLQ now
        # and let the rest of the batch go on.
        count(Metric.POISON_MESSAGES)
        logger.warning(
            "unparseable work message sent to the DLQ", extra={"message_id": record.message_id}
        )
        engine.queue.send_dead_letter(
            DeadLetterMessage(
                reason="poison: unparseable message", raw_body=record.body[:_RAW_BODY_LIMIT]
            )
        )
        return
    AttemptRunner(engine).run(message, remaining_seconds)


def _remaining_seconds(context: LambdaContext) -> float:
    return context.get_remaining_time_in_millis() / 1000


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    async def record_handler(record: SQSRecord) -> None:
        # boto3, httpx and redis calls block; threads let a batch's records overlap.
        await asyncio.to_thread(handle_record, record, _remaining_seconds(context))

    response = async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
