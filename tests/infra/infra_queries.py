"""Small readers over a synthesised CloudFormation template, for the infra tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

Resources = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Synthesized:
    """The synthesised stack: assertions API, raw JSON and where the template file is."""

    template: Template
    template_json: dict[str, Any]
    template_path: Path
    assembly_dir: Path


@dataclass(frozen=True)
class NagRun:
    """One run of a cdk-nag pack during synthesis: its name and the findings it reported."""

    plugin: str
    success: bool
    findings: tuple[str, ...]


def of_type(template: dict[str, Any], resource_type: str) -> Resources:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def by_path(template: dict[str, Any], path_suffix: str) -> tuple[str, dict[str, Any]]:
    """The one resource whose construct path (aws:cdk:path) ends with `path_suffix`."""
    matches = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource.get("Metadata", {}).get("aws:cdk:path", "").endswith(path_suffix)
    ]
    assert len(matches) == 1, f"{len(matches)} resources end with {path_suffix!r}"
    return matches[0]


def function_id(template: dict[str, Any], name: str) -> str:
    """Logical id of the engine function Api, Worker or Scheduler."""
    return by_path(template, f"Engine/Functions/{name}/Function/Resource")[0]


def role_statements(template: dict[str, Any], function_logical_id: str) -> list[dict[str, Any]]:
    """Every IAM statement of the policies attached to the function's execution role."""
    role_ref = template["Resources"][function_logical_id]["Properties"]["Role"]
    role_id = role_ref["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def allowed_actions(template: dict[str, Any], function_logical_id: str) -> set[str]:
    actions: set[str] = set()
    for statement in role_statements(template, function_logical_id):
        if statement["Effect"] == "Allow":
            value = statement["Action"]
            actions.update([value] if isinstance(value, str) else value)
    return actions


def resources_for(template: dict[str, Any], function_logical_id: str, action: str) -> list[Any]:
    found: list[Any] = []
    for statement in role_statements(template, function_logical_id):
        actions = statement["Action"]
        if action in ([actions] if isinstance(actions, str) else actions):
            value = statement["Resource"]
            found.extend(value if isinstance(value, list) else [value])
    return found


def references(value: Any) -> set[str]:
    """Logical ids that a property value points at through Ref or Fn::GetAtt."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def dashboard_metrics(template: dict[str, Any]) -> Iterator[list[Any]]:
    """The metric arrays of every dashboard widget ([namespace, name, dims..., options])."""
    for dashboard in of_type(template, "AWS::CloudWatch::Dashboard").values():
        body = dashboard["Properties"]["DashboardBody"]
        parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
        # Tokens sit inside JSON strings (region, function names): a placeholder keeps it JSON.
        text = "".join(part if isinstance(part, str) else "TOKEN" for part in parts)
        for widget in json.loads(text)["widgets"]:
            yield from widget.get("properties", {}).get("metrics", [])


def subnet_ids(template: dict[str, Any], subnet_type: str) -> list[dict[str, str]]:
    """Refs to the VPC's subnets of one CDK subnet type ("Public", "Private", "Isolated")."""
    tag = {"Key": "aws-cdk:subnet-type", "Value": subnet_type}
    return [
        {"Ref": logical_id}
        for logical_id, subnet in of_type(template, "AWS::EC2::Subnet").items()
        if tag in subnet["Properties"].get("Tags", [])
    ]


def default_route(template: dict[str, Any], subnet_ref: dict[str, str]) -> dict[str, Any]:
    """The 0.0.0.0/0 route of the route table associated with the subnet."""
    (table,) = [
        association["Properties"]["RouteTableId"]
        for association in of_type(template, "AWS::EC2::SubnetRouteTableAssociation").values()
        if association["Properties"]["SubnetId"] == subnet_ref
    ]
    routes: list[dict[str, Any]] = [
        route["Properties"]
        for route in of_type(template, "AWS::EC2::Route").values()
        if route["Properties"]["RouteTableId"] == table
        and route["Properties"].get("DestinationCidrBlock") == "0.0.0.0/0"
    ]
    (route,) = routes
    return route
