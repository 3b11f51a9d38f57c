"""The HTTP API in front of the api function: IAM-authorised routes and access logs."""

from __future__ import annotations

import json

import jsii
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.retention import removal_policy

# Paths callers (services submitting tasks) use; admin routes live under ADMIN_PREFIX. Each
# takes any method, so a wrong one reaches the handler and gets its 405 problem with Allow
# instead of the gateway's bare 404.
CLIENT_ROUTES = (
    "/v1/tasks",
    "/v1/tasks/{task_id}",
    "/v1/tasks/{task_id}/cancel",
    "/health",
    "/openapi.json",
    "/docs",
)
ADMIN_PREFIX = "/v1/admin"
# execute-api resource paths for grants (`*` matches any method and any path below).
CLIENT_PATHS = ("/v1/tasks", "/v1/tasks/*", "/health", "/openapi.json", "/docs")
ADMIN_PATHS = (f"{ADMIN_PREFIX}/*",)


# One JSON object per request, from the variables HTTP API access logs support (REST API
# variables such as $context.resourcePath or $context.identity.user log nothing here).
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "sourceIp": "$context.identity.sourceIp",
    "userArn": "$context.identity.userArn",
    "requestTime": "$context.requestTime",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "errorMessage": "$context.error.message",
    "integrationStatus": "$context.integration.status",
    "integrationErrorMessage": "$context.integrationErrorMessage",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        # aws_apigatewayv2 has no format class of its own; `custom` passes the string through.
        return apigateway.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT))


class EngineApi(Construct):
    """An HTTP API where every route needs SigV4 (IAM) and admin routes are granted apart.

    Admin routes (`/v1/admin/*`) go through their own integration, so an operator role can be
    granted them with `grant_admin` while services only get `grant_invoke`. The access logs
    are kept when the stack is deleted unless `deletion_protection` is off.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        log_retention: logs.RetentionDays,
        throttle_rate_limit: int,
        throttle_burst_limit: int,
        deletion_protection: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention,
            removal_policy=removal_policy(deletion_protection),
        )
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            description="taskengine: submit and inspect background tasks",
            default_authorizer=authorizers.HttpIamAuthorizer(),
            create_default_stage=False,
        )
        self.stage = self.http_api.add_stage(
            "DefaultStage",
            stage_name="$default",
            auto_deploy=True,
            access_log_settings=_AccessLogSettings(self.access_logs),
            throttle=apigwv2.ThrottleSettings(
                rate_limit=throttle_rate_limit, burst_limit=throttle_burst_limit
            ),
        )
        client = integrations.HttpLambdaIntegration("Client", handler)
        admin = integrations.HttpLambdaIntegration("Admin", handler)
        for path in CLIENT_ROUTES:
            self.http_api.add_routes(
                path=path, methods=[apigwv2.HttpMethod.ANY], integration=client
            )
        self.http_api.add_routes(
            path=f"{ADMIN_PREFIX}/{{proxy+}}", methods=[apigwv2.HttpMethod.ANY], integration=admin
        )

    @property
    def url(self) -> str:
        return self.stage.url

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow `grantee` to submit, read and cancel tasks (and read /health and the docs)."""
        return self._grant(grantee, CLIENT_PATHS)

    def grant_admin(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow `grantee` the admin routes: list, retry, replay, redrive, stats."""
        return self._grant(grantee, ADMIN_PATHS)

    def _grant(self, grantee: iam.IGrantable, paths: tuple[str, ...]) -> iam.Grant:
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["execute-api:Invoke"],
            resource_arns=[
                self.http_api.arn_for_execute_api(method="*", path=path, stage="*")
                for path in paths
            ],
        )
