"""The HTTP API: IAM on every route, admin routes apart, access logs."""

from __future__ import annotations

import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from infra_queries import Synthesized, by_path, of_type

from functions.api.handler import app
from infra.constructs import TaskEngine

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

# Variables HTTP API access logs fill in (part of the "Customize HTTP API access logs" list
# of the API Gateway developer guide); REST-only ones such as $context.resourcePath do not.
HTTP_API_LOG_VARIABLES = {
    "$context.accountId",
    "$context.apiId",
    "$context.authorizer.error",
    "$context.awsEndpointRequestId",
    "$context.dataProcessed",
    "$context.domainName",
    "$context.error.message",
    "$context.error.messageString",
    "$context.error.responseType",
    "$context.extendedRequestId",
    "$context.httpMethod",
    "$context.identity.accountId",
    "$context.identity.caller",
    "$context.identity.sourceIp",
    "$context.identity.userAgent",
    "$context.identity.userArn",
    "$context.integration.error",
    "$context.integration.latency",
    "$context.integration.requestId",
    "$context.integration.status",
    "$context.integrationErrorMessage",
    "$context.integrationLatency",
    "$context.integrationStatus",
    "$context.path",
    "$context.protocol",
    "$context.requestId",
    "$context.requestTime",
    "$context.requestTimeEpoch",
    "$context.responseLatency",
    "$context.responseLength",
    "$context.routeKey",
    "$context.stage",
    "$context.status",
}


def _stage(synthesized: Synthesized) -> dict[str, Any]:
    (stage,) = of_type(synthesized.template_json, "AWS::ApiGatewayV2::Stage").values()
    properties: dict[str, Any] = stage["Properties"]
    return properties


def test_every_route_requires_iam_authorization(synthesized: Synthesized) -> None:
    routes = of_type(synthesized.template_json, "AWS::ApiGatewayV2::Route").values()
    assert routes
    assert {route["Properties"]["AuthorizationType"] for route in routes} == {"AWS_IAM"}


def test_admin_routes_use_their_own_integration(synthesized: Synthesized) -> None:
    # Given the routes and their integration targets
    routes = of_type(synthesized.template_json, "AWS::ApiGatewayV2::Route").values()
    targets = {
        route["Properties"]["RouteKey"]: str(route["Properties"]["Target"]) for route in routes
    }
    # When splitting them into admin and client routes
    admin = {target for key, target in targets.items() if " /v1/admin/" in key}
    client = {target for key, target in targets.items() if " /v1/admin/" not in key}
    # Then each group has exactly one integration and they differ
    assert len(admin) == 1
    assert len(client) == 1
    assert admin != client


def test_routes_take_any_method_so_the_handler_answers_a_wrong_one(
    synthesized: Synthesized,
) -> None:
    routes = of_type(synthesized.template_json, "AWS::ApiGatewayV2::Route").values()
    keys = {route["Properties"]["RouteKey"] for route in routes}
    assert keys == {
        "ANY /v1/tasks",
        "ANY /v1/tasks/{task_id}",
        "ANY /v1/tasks/{task_id}/cancel",
        "ANY /v1/admin/{proxy+}",
        "ANY /health",
        "ANY /openapi.json",
        "ANY /docs",
    }


def test_every_path_the_api_handler_documents_has_a_route(synthesized: Synthesized) -> None:
    # Given the paths in the API handler's own OpenAPI document
    documented = set(app.get_openapi_schema().paths or {})
    # Then each is a client route or lies below the admin proxy route
    routes = of_type(synthesized.template_json, "AWS::ApiGatewayV2::Route").values()
    paths = {route["Properties"]["RouteKey"].split(" ", 1)[1] for route in routes}
    assert documented
    for path in documented:
        assert path in paths or path.startswith("/v1/admin/"), path


def test_stage_writes_access_logs_to_its_log_group_and_throttles(
    synthesized: Synthesized,
) -> None:
    # Given the stage and the access log group
    template = synthesized.template_json
    properties = _stage(synthesized)
    log_group_id, log_group = by_path(template, "Engine/Api/AccessLogs/Resource")
    # Then the stage logs to that group, which keeps a month of logs and outlives the stack
    assert properties["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": [log_group_id, "Arn"]
    }
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert log_group["DeletionPolicy"] == "Retain"
    assert properties["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


def test_access_log_is_json_of_http_api_variables(synthesized: Synthesized) -> None:
    # Given the access log format
    fields = json.loads(_stage(synthesized)["AccessLogSettings"]["Format"])
    # Then each field is exactly one variable HTTP APIs fill in
    variables = set(fields.values())
    assert all(re.fullmatch(r"\$context\.[A-Za-z.]+", value) for value in variables)
    assert variables <= HTTP_API_LOG_VARIABLES
    # And it says which request, which route and caller, and how it ended
    assert {
        "$context.requestId",
        "$context.routeKey",
        "$context.identity.sourceIp",
        "$context.identity.userArn",
        "$context.status",
        "$context.responseLatency",
        "$context.error.message",
        "$context.integrationErrorMessage",
        "$context.integration.status",
    } <= variables


def test_access_log_group_goes_with_the_stack_without_deletion_protection(
    synthesized_without_deletion_protection: Synthesized,
) -> None:
    template = synthesized_without_deletion_protection.template_json
    _, log_group = by_path(template, "Engine/Api/AccessLogs/Resource")
    assert log_group["DeletionPolicy"] == "Delete"
    assert log_group["UpdateReplacePolicy"] == "Delete"


def _granted_paths(stack: cdk.Stack, role: iam.Role) -> list[str]:
    policy = role.node.find_child("DefaultPolicy")
    assert isinstance(policy, iam.Policy)
    (statement,) = stack.resolve(policy.document.to_json())["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    resources = statement["Resource"]
    resources = resources if isinstance(resources, list) else [resources]
    # Each ARN is a join whose last literal part is "/<stage>/<method><path>".
    return [arn["Fn::Join"][1][-1] for arn in resources]


@pytest.mark.usefixtures("built_assets")
def test_admin_routes_are_granted_apart_from_the_client_routes() -> None:
    # Given an engine, an operator role and a service role
    stack = cdk.Stack(cdk.App(), "Grants")
    engine = TaskEngine(stack, "Engine")
    operator = iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal())
    service = iam.Role(stack, "Service", assumed_by=iam.AccountRootPrincipal())
    # When granting the operator the admin routes and the service the client routes
    engine.grant_admin(operator)
    engine.grant_invoke(service)
    # Then only the operator may call /v1/admin/*, and the service may submit and read tasks
    assert _granted_paths(stack, operator) == ["/*/*/v1/admin/*"]
    service_paths = _granted_paths(stack, service)
    assert "/*/*/v1/tasks" in service_paths
    assert not [path for path in service_paths if "/admin" in path]
