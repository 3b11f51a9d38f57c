"""Invoke the scheduler handler on a timer, as the EventBridge rule does in AWS."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from taskengine_local import aws_constants
from taskengine_local.lambda_context import LocalLambdaContext

LambdaHandler = Callable[[dict[str, Any], Any], Any]

FUNCTION_NAME = "taskengine-scheduler"
RULE_NAME = "taskengine-dispatch"

logger = logging.getLogger(__name__)


def scheduled_event(now: datetime | None = None) -> dict[str, Any]:
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": aws_constants.ACCOUNT_ID,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": aws_constants.REGION,
        "resources": [aws_constants.events_rule_arn(RULE_NAME)],
        "detail": {},
    }


class SchedulerTimer:
    def __init__(self, handler: LambdaHandler, *, interval_seconds: float) -> None:
        self._handler = handler
        self._interval_seconds = interval_seconds

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval_seconds):
            self.tick()

    def tick(self) -> None:
        context = LocalLambdaContext(FUNCTION_NAME, timeout_seconds=60)
        try:
            self._handler(scheduled_event(), context)
        except Exception:
            # EventBridge fires again on the next tick whatever this one did; so does the timer.
            logger.exception("scheduler handler raised")
