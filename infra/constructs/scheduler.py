"""The EventBridge rule that runs the scheduler function every minute."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

SCHEDULE_RATE = cdk.Duration.minutes(1)


class EngineSchedule(Construct):
    """Invokes the scheduler every minute.

    A run that cannot be delivered within a minute is dropped: the next run covers the same
    due work, and the SchedulerRuns alarm fires if runs stop.
    """

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "EveryMinute",
            description="taskengine: dispatch due tasks",
            schedule=events.Schedule.rate(SCHEDULE_RATE),
            targets=[
                targets.LambdaFunction(
                    handler, max_event_age=cdk.Duration.minutes(1), retry_attempts=2
                )
            ],
        )
