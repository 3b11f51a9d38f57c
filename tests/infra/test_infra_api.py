"""The HTTP API: IAM on every route, admin routes apart, access logs."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from infra_queries import Synthesized, of_type

from infra.constructs import TaskEngine

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


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


def test_client_routes_cover_the_documented_api(synthesized: Synthesized) -> None:
    routes = of_type(synthesized.template_json, "AWS::ApiGatewayV2::Route").values()
    keys = {route["Properties"]["RouteKey"] for route in routes}
    assert keys == {
        "POST /v1/tasks",
        "GET /v1/tasks/{task_id}",
        "POST /v1/tasks/{task_id}/cancel",
        "ANY /v1/admin/{proxy+}",
        "GET /health",
        "GET /openapi.json",
        "GET /docs",
    }


def test_stage_writes_access_logs_and_throttles(synthesized: Synthesized) -> None:
    (stage,) = of_type(synthesized.template_json, "AWS::ApiGatewayV2::Stage").values()
    properties = stage["Properties"]
    assert "DestinationArn" in properties["AccessLogSettings"]
    assert "$context.requestId" in properties["AccessLogSettings"]["Format"]
    assert properties["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


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
