"""The HTTP API: IAM on every route, admin routes apart, access logs."""

from __future__ import annotations

import pytest
from infra_queries import Synthesized, of_type

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
