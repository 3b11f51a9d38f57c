"""TaskEngine: the whole engine as one construct another CDK app can instantiate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.api import EngineApi
from infra.constructs.cache import EngineCache
from infra.constructs.functions import EngineFunctions, FunctionsConfig, FunctionsNetwork
from infra.constructs.monitoring import EngineMonitoring
from infra.constructs.network import EngineNetwork
from infra.constructs.queues import EngineQueues
from infra.constructs.scheduler import EngineSchedule
from infra.constructs.storage import EngineStorage

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORKER_TIMEOUT = cdk.Duration.minutes(5)
DEFAULT_BATCHING_WINDOW = cdk.Duration.seconds(1)
# Above SQS's 15-minute delay ceiling, so a delayed message does not set it off.
DEFAULT_OLDEST_MESSAGE_AGE_THRESHOLD = cdk.Duration.minutes(20)


@dataclass(frozen=True)
class TaskEngineProps:
    """What a deployment may choose; every field has a working default."""

    # Prefix of the physical names (table, queues, key alias, cache); the stack name if empty.
    name_prefix: str = ""
    # Network: an existing VPC (with private subnets with egress), else a new two-AZ VPC.
    vpc: ec2.IVpc | None = None
    nat_gateways: int = 1
    interface_endpoints: bool = True
    # Data: deletion protection on the table, and keep table and header key on stack deletion.
    deletion_protection: bool = True
    # Worker and its queue. The visibility timeout defaults to 6 x timeout + batching window.
    worker_timeout: cdk.Duration = DEFAULT_WORKER_TIMEOUT
    worker_batch_size: int = 10
    worker_batching_window: cdk.Duration = DEFAULT_BATCHING_WINDOW
    worker_max_concurrency: int = 10
    work_queue_visibility_timeout: cdk.Duration | None = None
    max_receive_count: int = 5
    # `lambda` targets the worker may invoke; empty allows any function in the account.
    invocable_function_arns: Sequence[str] = ()
    api_memory_mb: int = 512
    worker_memory_mb: int = 1024
    scheduler_memory_mb: int = 512
    due_shards: int = 8
    api_throttle_rate_limit: int = 100
    api_throttle_burst_limit: int = 200
    cache_max_data_storage_gb: int = 1
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    oldest_message_age_threshold: cdk.Duration = DEFAULT_OLDEST_MESSAGE_AGE_THRESHOLD
    alarm_emails: Sequence[str] = ()
    # Code: the function bundles and layer directories built by layers/build_layer.py.
    functions_dir: Path = REPO_ROOT / "build" / "functions"
    deps_layer_dir: Path = REPO_ROOT / "build" / "layers" / "deps"
    engine_layer_dir: Path = REPO_ROOT / "build" / "layers" / "engine"
    tags: dict[str, str] = field(default_factory=dict)


class TaskEngine(Construct):
    """Task table, queues, cache, functions, HTTP API, schedule and monitoring, wired together.

    Grant callers access with `grant_invoke` (submit/read/cancel) and `grant_admin`.
    """

    def __init__(
        self, scope: Construct, construct_id: str, props: TaskEngineProps | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        props = props or TaskEngineProps()
        name_prefix = props.name_prefix or cdk.Stack.of(self).stack_name
        for key, value in props.tags.items():
            cdk.Tags.of(self).add(key, value)

        self.network = EngineNetwork(
            self,
            "Network",
            vpc=props.vpc,
            nat_gateways=props.nat_gateways,
            interface_endpoints=props.interface_endpoints,
            log_retention=props.log_retention,
            deletion_protection=props.deletion_protection,
        )
        self.storage = EngineStorage(
            self,
            "Storage",
            name_prefix=name_prefix,
            deletion_protection=props.deletion_protection,
        )
        self.queues = EngineQueues(
            self,
            "Queues",
            name_prefix=name_prefix,
            consumer_timeout=props.worker_timeout,
            batching_window=props.worker_batching_window,
            max_receive_count=props.max_receive_count,
            visibility_timeout=props.work_queue_visibility_timeout,
        )
        self.cache = EngineCache(
            self,
            "Cache",
            name_prefix=name_prefix,
            vpc=self.network.vpc,
            subnet_ids=self.network.vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
            ).subnet_ids,
            client_security_group=self.network.function_security_group,
            max_data_storage_gb=props.cache_max_data_storage_gb,
        )
        self.functions = EngineFunctions(
            self,
            "Functions",
            config=_functions_config(props, deployment=name_prefix),
            network=FunctionsNetwork(
                vpc=self.network.vpc,
                subnets=self.network.private_subnets,
                security_group=self.network.function_security_group,
            ),
            storage=self.storage,
            queues=self.queues,
            cache=self.cache,
        )
        self.api = EngineApi(
            self,
            "Api",
            handler=self.functions.api.function,
            log_retention=props.log_retention,
            throttle_rate_limit=props.api_throttle_rate_limit,
            throttle_burst_limit=props.api_throttle_burst_limit,
            deletion_protection=props.deletion_protection,
        )
        self.schedule = EngineSchedule(self, "Schedule", handler=self.functions.scheduler.function)
        self.monitoring = EngineMonitoring(
            self,
            "Monitoring",
            deployment=name_prefix,
            deletion_protection=props.deletion_protection,
            queues=self.queues,
            http_api=self.api.http_api,
            api=self.functions.api,
            worker=self.functions.worker,
            scheduler=self.functions.scheduler,
            oldest_message_age_threshold=props.oldest_message_age_threshold,
            alarm_emails=props.alarm_emails,
        )

    @property
    def api_url(self) -> str:
        return self.api.url

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow `grantee` to submit, read and cancel tasks through the HTTP API."""
        return self.api.grant_invoke(grantee)

    def grant_admin(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow `grantee` the admin routes (/v1/admin/*)."""
        return self.api.grant_admin(grantee)


def _functions_config(props: TaskEngineProps, *, deployment: str) -> FunctionsConfig:
    return FunctionsConfig(
        deployment=deployment,
        functions_dir=props.functions_dir,
        deps_layer_dir=props.deps_layer_dir,
        engine_layer_dir=props.engine_layer_dir,
        api_memory_mb=props.api_memory_mb,
        worker_memory_mb=props.worker_memory_mb,
        scheduler_memory_mb=props.scheduler_memory_mb,
        worker_timeout=props.worker_timeout,
        worker_batch_size=props.worker_batch_size,
        worker_batching_window=props.worker_batching_window,
        worker_max_concurrency=props.worker_max_concurrency,
        due_shards=props.due_shards,
        invocable_function_arns=props.invocable_function_arns,
        log_retention=props.log_retention,
        deletion_protection=props.deletion_protection,
    )
