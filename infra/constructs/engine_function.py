"""The one Lambda function definition every engine function is built from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.nag import acknowledge
from infra.constructs.retention import removal_policy
from taskengine import names

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
# Files in a function bundle that are never part of its code asset.
ASSET_EXCLUDES = ("__pycache__", "*.pyc", "*.pyo")


def handler_for(name: str) -> str:
    """The handler of the function bundled from functions/<name>/handler.py."""
    return f"functions.{name}.handler.lambda_handler"


class EngineFunction(Construct):
    """A python3.12 arm64 function in the engine's VPC with the shared layers.

    Every function logs JSON to its own log group (with retention) and is traced with X-Ray.
    The log group is kept when the stack is deleted unless `deletion_protection` is off.
    `code_dir` is the bundle layers/build_layer.py makes for functions/<name>: it keeps the
    `functions.<name>` package path, so the handler's own imports work unchanged.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        code_dir: Path,
        description: str,
        memory_size_mb: int,
        timeout: cdk.Duration,
        layers: Sequence[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        log_retention: logs.RetentionDays,
        deletion_protection: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            removal_policy=removal_policy(deletion_protection),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler_for(name),
            code=lambda_.Code.from_asset(str(code_dir), exclude=list(ASSET_EXCLUDES)),
            memory_size=memory_size_mb,
            timeout=timeout,
            layers=list(layers),
            environment={
                "POWERTOOLS_SERVICE_NAME": names.SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
                **environment,
            },
            logging_format=lambda_.LoggingFormat.JSON,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=[security_group],
        )
        self._acknowledge_findings()

    @property
    def role(self) -> iam.IRole:
        role = self.function.role
        if role is None:  # the function always creates its own role; this narrows the type
            raise RuntimeError("the engine function has no execution role")
        return role

    def _acknowledge_findings(self) -> None:
        acknowledge(
            self,
            "L1",
            "The engine and dependency layers are built for CPython 3.12 (cp312 wheels); the "
            "runtime moves with the layer build, not on its own.",
        )
        for policy in ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"):
            acknowledge(
                self,
                "IAM4",
                f"{policy} is the AWS-maintained minimum for a Lambda function that writes its "
                "logs and attaches network interfaces in a VPC.",
                finding=f"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{policy}",
            )
        acknowledge(
            self,
            "IAM5",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions.",
            finding="Resource::*",
        )
