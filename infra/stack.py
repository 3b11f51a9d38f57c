"""The deployable stack: a TaskEngine configured from CDK context."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra.constructs import TaskEngine, TaskEngineProps

# Context keys (cdk.json or `cdk deploy -c key=value`).
CONTEXT_NAT_GATEWAYS = "taskengine:natGateways"
CONTEXT_INTERFACE_ENDPOINTS = "taskengine:interfaceEndpoints"
CONTEXT_DELETION_PROTECTION = "taskengine:deletionProtection"
CONTEXT_ALARM_EMAILS = "taskengine:alarmEmails"
CONTEXT_INVOCABLE_FUNCTION_ARNS = "taskengine:invocableFunctionArns"


class TaskEngineStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: TaskEngineProps | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.engine = TaskEngine(self, "Engine", props or props_from_context(self))
        cdk.CfnOutput(self, "ApiUrl", value=self.engine.api_url)
        cdk.CfnOutput(self, "TableName", value=self.engine.storage.table.table_name)
        cdk.CfnOutput(self, "WorkQueueUrl", value=self.engine.queues.work_queue.queue_url)
        cdk.CfnOutput(
            self, "DeadLetterQueueUrl", value=self.engine.queues.dead_letter_queue.queue_url
        )
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.engine.monitoring.alarm_topic.topic_arn)


def props_from_context(scope: Construct) -> TaskEngineProps:
    node = scope.node
    return TaskEngineProps(
        nat_gateways=_int(node.try_get_context(CONTEXT_NAT_GATEWAYS), 1),
        interface_endpoints=_flag(node.try_get_context(CONTEXT_INTERFACE_ENDPOINTS), True),
        deletion_protection=_flag(node.try_get_context(CONTEXT_DELETION_PROTECTION), True),
        alarm_emails=_list(node.try_get_context(CONTEXT_ALARM_EMAILS)),
        invocable_function_arns=_list(node.try_get_context(CONTEXT_INVOCABLE_FUNCTION_ARNS)),
    )


def _int(value: object, default: int) -> int:
    return default if value is None else int(str(value))


def _flag(value: object, default: bool) -> bool:
    """A boolean from context: JSON true/false from cdk.json, or a string from `-c`."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _list(value: object) -> Sequence[str]:
    """A list from context: a JSON list from cdk.json, or a comma-separated string from `-c`."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return tuple(item.strip() for item in str(value).split(",") if item.strip())
