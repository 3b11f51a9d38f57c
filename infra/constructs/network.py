"""The VPC the functions and the cache live in, and the endpoints that keep AWS calls inside it."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.errors import EngineConfigError
from infra.constructs.retention import removal_policy

# Interface endpoints for the services the functions call on every task. DynamoDB uses a
# (free) gateway endpoint. Lambda logs, metrics (EMF) and traces leave through the Lambda
# service itself, so no CloudWatch Logs or X-Ray endpoint is needed.
INTERFACE_SERVICES = {
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
}


class EngineNetwork(Construct):
    """A two-AZ VPC: public subnets for the NAT gateway(s), private subnets for everything else.

    The worker calls HTTP targets anywhere on the internet, so the private subnets route through
    `nat_gateways` NAT gateways (1 by default; 2 for a NAT per AZ). Pass `vpc` to use an
    existing VPC instead; it must have private subnets with egress.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc | None,
        nat_gateways: int,
        interface_endpoints: bool,
        log_retention: logs.RetentionDays,
        deletion_protection: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        if vpc is None and nat_gateways < 1:
            raise EngineConfigError(
                "nat_gateways must be at least 1: the worker calls HTTP targets on the internet"
            )
        self.vpc = vpc or self._create_vpc(
            nat_gateways, log_retention, removal_policy(deletion_protection)
        )
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.vpc.add_gateway_endpoint(
            "DynamoDb",
            service=ec2.GatewayVpcEndpointAwsService.DYNAMODB,
            subnets=[self.private_subnets],
        )
        self.function_security_group = ec2.SecurityGroup(
            self,
            "Functions",
            vpc=self.vpc,
            description="taskengine functions: outbound only",
            allow_all_outbound=True,
        )
        if interface_endpoints:
            self._add_interface_endpoints()

    def _add_interface_endpoints(self) -> None:
        # Only the functions may reach the endpoints (not the whole VPC CIDR).
        endpoint_group = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=self.vpc,
            description="taskengine interface endpoints: HTTPS from the functions",
            allow_all_outbound=False,
        )
        endpoint_group.add_ingress_rule(
            self.function_security_group, ec2.Port.tcp(443), "taskengine functions"
        )
        for name, service in INTERFACE_SERVICES.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.private_subnets,
                private_dns_enabled=True,
                open=False,
                security_groups=[endpoint_group],
            )

    def _create_vpc(
        self,
        nat_gateways: int,
        log_retention: logs.RetentionDays,
        kept_or_removed: cdk.RemovalPolicy,
    ) -> ec2.Vpc:
        flow_log_group = logs.LogGroup(
            self, "FlowLogs", retention=log_retention, removal_policy=kept_or_removed
        )
        return ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ),
            ],
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
