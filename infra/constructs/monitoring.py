"""Dashboard and alarms, built from the metric names the engine itself declares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.constructs.engine_function import EngineFunction
from infra.constructs.queues import EngineQueues
from infra.constructs.retention import removal_policy
from taskengine import names
from taskengine.names import Metric

ALARM_PERIOD = cdk.Duration.minutes(5)
GRAPH_PERIOD = cdk.Duration.minutes(1)
SUM = cloudwatch.Stats.SUM
MAXIMUM = cloudwatch.Stats.MAXIMUM
GREATER = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
LESS = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
WIDGET_WIDTH = 8


def engine_dimensions(deployment: str) -> dict[str, str]:
    """The dimensions of every engine metric: Powertools' service and the engine's deployment."""
    return {names.SERVICE_DIMENSION: names.SERVICE, names.DEPLOYMENT_DIMENSION: deployment}


def engine_metric(
    metric_name: str,
    *,
    deployment: str,
    statistic: str = SUM,
    period: cdk.Duration = GRAPH_PERIOD,
) -> cloudwatch.Metric:
    """A metric the engine emits; `metric_name` must be one of taskengine.names.ALL_METRICS."""
    if metric_name not in names.ALL_METRICS:
        raise ValueError(f"{metric_name!r} is not a metric the engine emits")
    return cloudwatch.Metric(
        namespace=names.METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map=engine_dimensions(deployment),
        statistic=statistic,
        period=period,
    )


class EngineMonitoring(Construct):
    """A dashboard of the engine's health and alarms that notify an encrypted SNS topic."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        deployment: str,
        deletion_protection: bool,
        queues: EngineQueues,
        http_api: apigwv2.HttpApi,
        api: EngineFunction,
        worker: EngineFunction,
        scheduler: EngineFunction,
        oldest_message_age_threshold: cdk.Duration,
        alarm_emails: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self._deployment = deployment
        self._functions = {"Api": api, "Worker": worker, "Scheduler": scheduler}
        self.alarm_topic = self._create_topic(alarm_emails, deletion_protection)
        self.alarms: list[cloudwatch.Alarm] = []
        self._create_alarms(queues, http_api, oldest_message_age_threshold)
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", default_interval=cdk.Duration.hours(3)
        )
        self._add_widgets(queues, http_api)

    def _create_topic(self, alarm_emails: Sequence[str], deletion_protection: bool) -> sns.Topic:
        # CloudWatch cannot publish to a topic under the AWS-managed SNS key: it needs this
        # key's permission, given below.
        key = kms.Key(
            self,
            "TopicKey",
            description="taskengine: encrypts the alarm topic",
            enable_key_rotation=True,
            removal_policy=removal_policy(deletion_protection),
        )
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        topic = sns.Topic(
            self, "Alarms", display_name="taskengine alarms", master_key=key, enforce_ssl=True
        )
        for email in alarm_emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _create_alarms(
        self,
        queues: EngineQueues,
        http_api: apigwv2.HttpApi,
        oldest_message_age_threshold: cdk.Duration,
    ) -> None:
        self._alarm(
            "DeadLettersWaiting",
            "Messages are waiting in the dead-letter queue",
            queues.dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic=MAXIMUM, period=GRAPH_PERIOD
            ),
            threshold=0,
        )
        self._alarm(
            "WorkQueueBacklog",
            "The oldest work message waits longer than the threshold (seconds)",
            queues.work_queue.metric_approximate_age_of_oldest_message(
                statistic=MAXIMUM, period=ALARM_PERIOD
            ),
            threshold=oldest_message_age_threshold.to_seconds(),
        )
        for name, function in self._functions.items():
            self._alarm(
                f"{name}Errors",
                f"The {name.lower()} function failed invocations",
                function.function.metric_errors(statistic=SUM, period=ALARM_PERIOD),
                threshold=0,
            )
            self._alarm(
                f"{name}Throttles",
                f"The {name.lower()} function was throttled",
                function.function.metric_throttles(statistic=SUM, period=ALARM_PERIOD),
                threshold=0,
            )
        self._alarm(
            "SchedulerNotRunning",
            "The scheduler has not completed a run in five minutes: due tasks are not dispatched",
            self._engine_metric(Metric.SCHEDULER_RUNS, period=ALARM_PERIOD),
            threshold=1,
            comparison=LESS,
            missing_data=cloudwatch.TreatMissingData.BREACHING,
        )
        self._alarm(
            "RedisUnavailable",
            "The engine runs degraded without Redis (DynamoDB guards alone)",
            self._engine_metric(Metric.REDIS_UNAVAILABLE, period=ALARM_PERIOD),
            threshold=0,
        )
        self._alarm(
            "ApiServerErrors",
            "The HTTP API answered with 5xx",
            http_api.metric_server_error(statistic=SUM, period=ALARM_PERIOD),
            threshold=0,
        )

    def _engine_metric(self, metric_name: str, **options: Any) -> cloudwatch.Metric:
        return engine_metric(metric_name, deployment=self._deployment, **options)

    def _alarm(
        self,
        construct_id: str,
        description: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator = GREATER,
        missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=f"taskengine: {description}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=missing_data,
        )
        action = cloudwatch_actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)

    def _add_widgets(self, queues: EngineQueues, http_api: apigwv2.HttpApi) -> None:
        shown: set[str] = set()

        def metric(metric_name: str, **options: Any) -> cloudwatch.Metric:
            shown.add(metric_name)
            return self._engine_metric(metric_name, **options)

        def graph(title: str, *metrics: cloudwatch.IMetric) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=list(metrics), width=WIDGET_WIDTH)

        self.dashboard.add_widgets(
            graph(
                "Tasks",
                metric(Metric.TASKS_SUBMITTED),
                metric(Metric.TASKS_COMPLETED),
            ),
            graph(
                "Attempts",
                metric(Metric.ATTEMPTS_STARTED),
                metric(Metric.ATTEMPTS_FAILED),
                metric(Metric.RETRIES_SCHEDULED),
            ),
            graph(
                "Dead letters and duplicates",
                metric(Metric.DEAD_LETTERS),
                metric(Metric.POISON_MESSAGES),
                metric(Metric.DUPLICATES_SUPPRESSED),
            ),
        )
        self.dashboard.add_widgets(
            graph(
                "Attempt duration (p50, p99)",
                metric(Metric.ATTEMPT_DURATION, statistic=cloudwatch.Stats.p(50)),
                metric(Metric.ATTEMPT_DURATION, statistic=cloudwatch.Stats.p(99)),
            ),
            cloudwatch.GraphWidget(
                title="Oldest work message age (s); DLQ depth on the right",
                left=[
                    queues.work_queue.metric_approximate_age_of_oldest_message(
                        statistic=MAXIMUM, period=GRAPH_PERIOD
                    )
                ],
                right=[
                    queues.dead_letter_queue.metric_approximate_number_of_messages_visible(
                        statistic=MAXIMUM, period=GRAPH_PERIOD
                    )
                ],
                width=WIDGET_WIDTH,
            ),
            cloudwatch.GraphWidget(
                title="Scheduler (lag on the right)",
                left=[
                    metric(Metric.SCHEDULER_RUNS),
                    metric(Metric.SCHEDULER_DISPATCHED),
                    metric(Metric.LEASES_RECOVERED),
                ],
                right=[metric(Metric.SCHEDULER_LAG, statistic=MAXIMUM)],
                width=WIDGET_WIDTH,
            ),
        )
        self.dashboard.add_widgets(
            graph(
                "Lambda errors",
                *(f.function.metric_errors(statistic=SUM) for f in self._functions.values()),
            ),
            graph(
                "Lambda throttles",
                *(f.function.metric_throttles(statistic=SUM) for f in self._functions.values()),
            ),
            graph(
                "API responses",
                http_api.metric_client_error(statistic=SUM, period=GRAPH_PERIOD),
                http_api.metric_server_error(statistic=SUM, period=GRAPH_PERIOD),
            ),
        )
        self.dashboard.add_widgets(
            graph(
                "Degraded operation",
                metric(Metric.REDIS_UNAVAILABLE),
                metric(Metric.ENQUEUE_FAILURES),
            ),
        )
        # Metrics the engine gained after this layout was drawn still get a graph.
        others = [name for name in names.ALL_METRICS if name not in shown]
        if others:
            self.dashboard.add_widgets(
                graph("Other engine metrics", *(metric(name) for name in others))
            )
