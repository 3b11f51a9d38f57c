"""The engine's Logger, Metrics and Tracer, shared by the handlers and the domain code."""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from taskengine import names
from taskengine.models import TaskState

logger = Logger(service=names.SERVICE)
metrics = Metrics(namespace=names.METRICS_NAMESPACE, service=names.SERVICE)
# Patches botocore only: every AWS call is an X-Ray subsegment. Patching httpx would send an
# X-Amzn-Trace-Id to every target and replace a task's own; the attempt gets a subsegment of
# its own instead. Off outside Lambda and wherever POWERTOOLS_TRACE_DISABLED is set; nothing
# traced records a response, as it may hold a payload.
tracer = Tracer(service=names.SERVICE, patch_modules=("botocore",))

TRANSITION_MESSAGE = "task transition"

# Read-only requests emit no metric; Powertools warns about each empty flush.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def count(metric: str, value: float = 1) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=value)


def milliseconds(metric: str, value: float) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Milliseconds, value=value)


def log_transition(state: TaskState, **fields: Any) -> None:
    """One structured line per state change: the task, its execution and what happened."""
    logger.info(
        TRANSITION_MESSAGE,
        extra={
            "task_id": state.task_id,
            "status": state.status.value,
            "generation": state.generation,
            "attempt": state.attempt_count,
            **{key: value for key, value in fields.items() if value is not None},
        },
    )
