"""The engine's layers and its three functions (api, worker, scheduler) with their grants."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.cache import EngineCache
from infra.constructs.engine_function import ARCHITECTURE, RUNTIME, EngineFunction
from infra.constructs.errors import EngineConfigError
from infra.constructs.nag import acknowledge, arn_reference, nag_arn
from infra.constructs.queues import EngineQueues
from infra.constructs.storage import EngineStorage
from taskengine import names
from taskengine.settings import EngineSettings

# DynamoDB actions per function: what taskengine.store (and, for the api's keyed redrive,
# Powertools' idempotency layer) calls. A TransactWriteItems call is authorised item by item
# against the action of each item; the engine's transactions hold only Put and Update items.
# The api's DeleteItem is Powertools', which deletes a redrive's record when the redrive fails.
API_TABLE_ACTIONS = (
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
WORKER_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
SCHEDULER_TABLE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
# Time the worker keeps for itself around the longest HTTP call: recording the outcome,
# enqueueing the retry, and the batch response.
WORKER_TIMEOUT_MARGIN = cdk.Duration.seconds(30)
MIN_WORKER_TIMEOUT = cdk.Duration.seconds(60)
DEFAULT_TIMEOUT = cdk.Duration.seconds(30)


def setting_env(field: str) -> str:
    """The environment variable EngineSettings reads `field` from (fails on unknown fields)."""
    if field not in EngineSettings.model_fields:
        raise EngineConfigError(f"EngineSettings has no field {field!r}")
    return f"{names.ENV_PREFIX}{field.upper()}"


def _require_built(path: Path) -> None:
    if not path.exists():
        raise EngineConfigError(f"{path} is missing: run `python layers/build_layer.py` first")


@dataclass(frozen=True)
class FunctionsConfig:
    deployment: str
    functions_dir: Path
    deps_layer_dir: Path
    engine_layer_dir: Path
    api_memory_mb: int
    worker_memory_mb: int
    scheduler_memory_mb: int
    worker_timeout: cdk.Duration
    worker_batch_size: int
    worker_batching_window: cdk.Duration
    worker_max_concurrency: int
    due_shards: int
    invocable_function_arns: Sequence[str]
    log_retention: logs.RetentionDays
    deletion_protection: bool


@dataclass(frozen=True)
class FunctionsNetwork:
    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup


class EngineFunctions(Construct):
    """Builds the layers and the three functions, then grants each what its code calls."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: FunctionsConfig,
        network: FunctionsNetwork,
        storage: EngineStorage,
        queues: EngineQueues,
        cache: EngineCache,
    ) -> None:
        super().__init__(scope, construct_id)
        if config.worker_timeout.to_seconds() < MIN_WORKER_TIMEOUT.to_seconds():
            raise EngineConfigError(
                f"worker_timeout must be at least {MIN_WORKER_TIMEOUT.to_seconds():g}s"
            )
        self._config = config
        self._network = network
        self._layers = self._create_layers()
        self._environment = {
            names.ENV_TABLE_NAME: storage.table.table_name,
            names.ENV_WORK_QUEUE_URL: queues.work_queue.queue_url,
            names.ENV_DEAD_LETTER_QUEUE_URL: queues.dead_letter_queue.queue_url,
            names.ENV_HEADER_KEY_ID: storage.header_key.key_arn,
            names.ENV_REDIS_URL: cache.url,
            names.ENV_REDIS_SECRET_ARN: cache.auth_secret.secret_arn,
            names.ENV_DUE_SHARDS: str(config.due_shards),
            names.ENV_DEPLOYMENT: config.deployment,
        }
        self.api = self._function(
            "Api", "api", "taskengine HTTP API: submit, read, admin", config.api_memory_mb
        )
        self.worker = self._function(
            "Worker",
            "worker",
            "taskengine worker: runs task attempts from the work queue",
            config.worker_memory_mb,
            timeout=config.worker_timeout,
            environment={setting_env("max_http_timeout_seconds"): self._max_http_timeout()},
        )
        self.scheduler = self._function(
            "Scheduler",
            "scheduler",
            "taskengine scheduler: dispatches due tasks every minute",
            config.scheduler_memory_mb,
        )
        for function in (self.api, self.worker, self.scheduler):
            cache.auth_secret.grant_read(function.function)
        self._grant_api(storage, queues)
        self._grant_worker(storage, queues)
        self._grant_scheduler(storage, queues)
        self.worker.function.add_event_source(
            event_sources.SqsEventSource(
                queues.work_queue,
                batch_size=config.worker_batch_size,
                max_batching_window=config.worker_batching_window,
                max_concurrency=config.worker_max_concurrency,
                report_batch_item_failures=True,
            )
        )

    @property
    def all(self) -> tuple[EngineFunction, ...]:
        return (self.api, self.worker, self.scheduler)

    def _create_layers(self) -> list[lambda_.ILayerVersion]:
        layers: list[lambda_.ILayerVersion] = []
        for name, directory, description in (
            ("Deps", self._config.deps_layer_dir, "taskengine runtime dependencies"),
            ("Engine", self._config.engine_layer_dir, "taskengine engine package"),
        ):
            _require_built(directory / "python")
            layers.append(
                lambda_.LayerVersion(
                    self,
                    f"{name}Layer",
                    code=lambda_.Code.from_asset(str(directory)),
                    compatible_runtimes=[RUNTIME],
                    compatible_architectures=[ARCHITECTURE],
                    description=description,
                )
            )
        return layers

    def _function(
        self,
        construct_id: str,
        folder: str,
        description: str,
        memory_size_mb: int,
        *,
        timeout: cdk.Duration = DEFAULT_TIMEOUT,
        environment: Mapping[str, str] | None = None,
    ) -> EngineFunction:
        code_dir = self._config.functions_dir / folder
        _require_built(code_dir / "functions" / folder / "handler.py")
        return EngineFunction(
            self,
            construct_id,
            name=folder,
            code_dir=code_dir,
            description=description,
            memory_size_mb=memory_size_mb,
            timeout=timeout,
            layers=self._layers,
            environment={**self._environment, **(environment or {})},
            vpc=self._network.vpc,
            vpc_subnets=self._network.subnets,
            security_group=self._network.security_group,
            log_retention=self._config.log_retention,
            deletion_protection=self._config.deletion_protection,
        )

    def _max_http_timeout(self) -> str:
        seconds = self._config.worker_timeout.to_seconds() - WORKER_TIMEOUT_MARGIN.to_seconds()
        return str(int(seconds))

    def _grant_api(self, storage: EngineStorage, queues: EngineQueues) -> None:
        function = self.api.function
        storage.table.grant(function, *API_TABLE_ACTIONS)
        queues.work_queue.grant_send_messages(function)
        queues.dead_letter_queue.grant_send_messages(function)
        queues.dead_letter_queue.grant_consume_messages(function)
        # Headers are sealed with a direct Encrypt call (they fit KMS's 4 KB limit); /health
        # checks the key with DescribeKey.
        storage.header_key.grant(function, "kms:Encrypt", "kms:DescribeKey")
        self._acknowledge_index_grant(self.api, storage)

    def _grant_worker(self, storage: EngineStorage, queues: EngineQueues) -> None:
        function = self.worker.function
        storage.table.grant(function, *WORKER_TABLE_ACTIONS)
        queues.work_queue.grant_send_messages(function)
        queues.dead_letter_queue.grant_send_messages(function)
        storage.header_key.grant_decrypt(function)
        self._acknowledge_index_grant(self.worker, storage)
        self._grant_lambda_targets()

    def _grant_scheduler(self, storage: EngineStorage, queues: EngineQueues) -> None:
        function = self.scheduler.function
        storage.table.grant(function, *SCHEDULER_TABLE_ACTIONS)
        queues.work_queue.grant_send_messages(function)
        queues.dead_letter_queue.grant_send_messages(function)
        self._acknowledge_index_grant(self.scheduler, storage)

    def _grant_lambda_targets(self) -> None:
        """Let the worker invoke `lambda` targets: the listed ARNs, else this account's."""
        arns = list(self._config.invocable_function_arns)
        for pattern in (arn for arn in arns if "*" in arn):
            acknowledge(
                self.worker,
                "IAM5",
                "A function name pattern chosen by the deployer in invocable_function_arns.",
                finding=f"Resource::{pattern}",
            )
        if not arns:
            stack = cdk.Stack.of(self)
            arn = stack.format_arn(
                service="lambda",
                resource="function",
                resource_name="*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            arns = [arn]
            acknowledge(
                self.worker,
                "IAM5",
                "No invocable_function_arns were given, so `lambda` targets may name any "
                "function of this account and region; pass the list to narrow it.",
                finding=f"Resource::{nag_arn(stack, arn)}",
            )
        self.worker.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=arns)
        )

    @staticmethod
    def _acknowledge_index_grant(function: EngineFunction, storage: EngineStorage) -> None:
        table = storage.table.node.default_child
        if not isinstance(table, cdk.CfnResource):
            raise TypeError("the task table has no CloudFormation resource")
        acknowledge(
            function,
            "IAM5",
            "Queries run on the table's own GSIs (due, by_status); `index/*` covers exactly "
            "the indexes of this one table.",
            finding=arn_reference(table, "/index/*"),
        )
