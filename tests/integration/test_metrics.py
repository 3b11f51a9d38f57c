"""Metrics as the handlers flush them: the names and dimensions the deployed alarms watch."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from taskengine import names
from taskengine.names import Metric


def emitted(output: str) -> list[dict[str, Any]]:
    """The Embedded Metric Format documents among the lines a handler printed."""
    documents = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def test_a_scheduler_run_emits_its_heartbeat_with_service_and_deployment(
    scheduler: Callable[[], dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given nothing due
    capsys.readouterr()

    # When the scheduler runs once
    scheduler()

    # Then its flush holds the heartbeat the SchedulerNotRunning alarm counts, dimensioned as
    # the alarm is (service and deployment; the local default deployment here)
    (document,) = [doc for doc in emitted(capsys.readouterr().out) if Metric.SCHEDULER_RUNS in doc]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == names.METRICS_NAMESPACE
    assert set(directive["Dimensions"][0]) == {names.SERVICE_DIMENSION, names.DEPLOYMENT_DIMENSION}
    assert document[names.SERVICE_DIMENSION] == names.SERVICE
    assert document[names.DEPLOYMENT_DIMENSION] == names.LOCAL_DEPLOYMENT
    assert document[Metric.SCHEDULER_RUNS] == [1.0]
