"""Alarms and dashboard: thresholds, the alarm topic, and metric names from taskengine.names."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from infra_queries import Synthesized, by_path, dashboard_metrics, of_type

from infra.app import DEFAULT_STACK_NAME
from taskengine import names
from taskengine.names import Metric

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_SOURCES = (ROOT / "layers" / "engine" / "taskengine", ROOT / "functions")
EMITTERS = {"count", "milliseconds"}

# The stack synthesised here is named by cdk.json's default, and so is its deployment.
ENGINE_DIMENSIONS = [
    {"Name": "deployment", "Value": DEFAULT_STACK_NAME},
    {"Name": "service", "Value": names.SERVICE},
]


def _alarm(synthesized: Synthesized, name: str) -> dict[str, Any]:
    _, alarm = by_path(synthesized.template_json, f"Engine/Monitoring/{name}/Resource")
    properties: dict[str, Any] = alarm["Properties"]
    return properties


def _engine_alarms(synthesized: Synthesized) -> list[dict[str, Any]]:
    alarms = of_type(synthesized.template_json, "AWS::CloudWatch::Alarm").values()
    return [
        alarm["Properties"]
        for alarm in alarms
        if alarm["Properties"].get("Namespace") == names.METRICS_NAMESPACE
    ]


def metrics_the_runtime_emits() -> set[str]:
    """Names passed as `Metric.X` to the engine's count()/milliseconds() in runtime code."""
    emitted: set[str] = set()
    for source in RUNTIME_SOURCES:
        for path in source.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                first = node.args[0]
                if (
                    name in EMITTERS
                    and isinstance(first, ast.Attribute)
                    and isinstance(first.value, ast.Name)
                    and first.value.id == "Metric"
                ):
                    emitted.add(getattr(Metric, first.attr))
    return emitted


def test_alarm_fires_on_the_first_message_in_the_dlq(synthesized: Synthesized) -> None:
    alarm = _alarm(synthesized, "DeadLettersWaiting")
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


def test_alarm_fires_when_work_waits_beyond_the_longest_sqs_delay(
    synthesized: Synthesized,
) -> None:
    alarm = _alarm(synthesized, "WorkQueueBacklog")
    assert alarm["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert alarm["Threshold"] > 900


def test_scheduler_alarm_treats_missing_runs_as_breaching(synthesized: Synthesized) -> None:
    # Given the scheduler heartbeat alarm
    alarm = _alarm(synthesized, "SchedulerNotRunning")
    # Then fewer than one run in five minutes, or no data at all, sets it off
    assert alarm["MetricName"] == Metric.SCHEDULER_RUNS
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["Threshold"] == 1
    assert alarm["Period"] == 300
    assert alarm["TreatMissingData"] == "breaching"


def test_alarm_fires_when_the_engine_runs_without_redis(synthesized: Synthesized) -> None:
    alarm = _alarm(synthesized, "RedisUnavailable")
    assert alarm["MetricName"] == Metric.REDIS_UNAVAILABLE
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


@pytest.mark.parametrize("name", ["Api", "Worker", "Scheduler"])
def test_each_function_alarms_on_errors_and_throttles(synthesized: Synthesized, name: str) -> None:
    for suffix, metric in (("Errors", "Errors"), ("Throttles", "Throttles")):
        alarm = _alarm(synthesized, f"{name}{suffix}")
        assert alarm["MetricName"] == metric
        assert alarm["Threshold"] == 0


def test_the_topic_key_is_kept_with_deletion_protection_and_removed_without(
    synthesized: Synthesized, synthesized_without_deletion_protection: Synthesized
) -> None:
    path = "Engine/Monitoring/TopicKey/Resource"
    _, kept = by_path(synthesized.template_json, path)
    _, removed = by_path(synthesized_without_deletion_protection.template_json, path)
    assert kept["DeletionPolicy"] == "Retain"
    assert removed["DeletionPolicy"] == "Delete"


def test_every_alarm_notifies_the_encrypted_topic(synthesized: Synthesized) -> None:
    # Given the alarm topic
    template = synthesized.template_json
    topic_id, topic = by_path(template, "Engine/Monitoring/Alarms/Resource")
    # Then it is KMS-encrypted and every alarm sends both ALARM and OK to it
    assert "KmsMasterKeyId" in topic["Properties"]
    for alarm in of_type(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]


def test_engine_alarms_watch_metrics_the_engine_emits(synthesized: Synthesized) -> None:
    # Given the alarms on the engine's own namespace
    alarms = _engine_alarms(synthesized)
    # Then each names a metric from taskengine.names, dimensioned by service and deployment
    assert alarms
    for alarm in alarms:
        assert alarm["MetricName"] in names.ALL_METRICS
        assert sorted(alarm["Dimensions"], key=lambda d: d["Name"]) == ENGINE_DIMENSIONS


def test_every_engine_metric_an_alarm_watches_is_emitted_by_the_runtime(
    synthesized: Synthesized,
) -> None:
    # Given the engine metrics the alarms watch, and the ones the runtime code emits
    watched = {alarm["MetricName"] for alarm in _engine_alarms(synthesized)}
    emitted = metrics_the_runtime_emits()
    # Then an alarm never waits on a metric no code path sends (SchedulerNotRunning would
    # fire for ever; RedisUnavailable never)
    assert {Metric.SCHEDULER_RUNS, Metric.REDIS_UNAVAILABLE} <= watched
    assert watched <= emitted


def test_every_declared_metric_is_emitted_by_the_runtime() -> None:
    assert set(names.ALL_METRICS) == metrics_the_runtime_emits()


def test_dashboard_graphs_only_metrics_the_engine_emits(synthesized: Synthesized) -> None:
    # Given every dashboard metric in the engine's namespace
    engine_metrics = [
        metric
        for metric in dashboard_metrics(synthesized.template_json)
        if metric[0] == names.METRICS_NAMESPACE
    ]
    # Then each is in taskengine.names.ALL_METRICS, dimensioned by service and deployment
    assert engine_metrics
    expected = {(d["Name"], d["Value"]) for d in ENGINE_DIMENSIONS}
    for metric in engine_metrics:
        assert metric[1] in names.ALL_METRICS
        dimensions = [part for part in metric[2:] if isinstance(part, str)]
        assert set(zip(dimensions[::2], dimensions[1::2], strict=True)) == expected


def test_dashboard_shows_the_metrics_operators_need(synthesized: Synthesized) -> None:
    # Given the names of every dashboard metric
    shown = {metric[1] for metric in dashboard_metrics(synthesized.template_json)}
    # Then the engine's, the queues', Lambda's and the API's key signals are there
    assert {
        Metric.TASKS_SUBMITTED,
        Metric.TASKS_COMPLETED,
        Metric.ATTEMPTS_FAILED,
        Metric.RETRIES_SCHEDULED,
        Metric.DEAD_LETTERS,
        Metric.DUPLICATES_SUPPRESSED,
        Metric.ATTEMPT_DURATION,
        Metric.SCHEDULER_DISPATCHED,
        Metric.SCHEDULER_LAG,
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
        "Errors",
        "Throttles",
        "4xx",
        "5xx",
    } <= shown


def test_dashboard_graphs_every_metric_the_engine_emits(synthesized: Synthesized) -> None:
    # Given the names of every dashboard metric in the engine's namespace
    shown = {
        metric[1]
        for metric in dashboard_metrics(synthesized.template_json)
        if metric[0] == names.METRICS_NAMESPACE
    }
    # Then none of taskengine.names.ALL_METRICS is missing (new ones land in a catch-all graph)
    assert set(names.ALL_METRICS) <= shown


def test_attempt_duration_is_graphed_at_p50_and_p99(synthesized: Synthesized) -> None:
    stats = {
        metric[-1].get("stat")
        for metric in dashboard_metrics(synthesized.template_json)
        if metric[1] == Metric.ATTEMPT_DURATION
    }
    assert stats == {"p50", "p99"}


def test_scheduler_runs_every_minute(synthesized: Synthesized) -> None:
    (rule,) = of_type(synthesized.template_json, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["State"] == "ENABLED"
