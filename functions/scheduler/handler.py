"""EventBridge-triggered scheduler: dispatches due work and recovers lost attempts."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from taskengine.dispatcher import Dispatcher
from taskengine.engine import default_engine
from taskengine.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = Dispatcher(default_engine()).run_once()
    return {
        "dispatched": report.dispatched,
        "recovered": report.recovered,
        "poisoned": report.poisoned,
        "lag_ms": report.max_lag_ms,
    }
