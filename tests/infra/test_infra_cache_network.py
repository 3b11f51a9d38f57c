"""Serverless Valkey with TLS and AUTH, and the VPC the engine runs in."""

from __future__ import annotations

import pytest
from infra_queries import Synthesized, by_path, function_id, of_type, references

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def test_functions_reach_the_cache_over_tls(synthesized: Synthesized) -> None:
    # Given the worker's Redis URL
    template = synthesized.template_json
    variables = template["Resources"][function_id(template, "Worker")]["Properties"]["Environment"][
        "Variables"
    ]
    url_parts = variables["TASKENGINE_REDIS_URL"]["Fn::Join"][1]
    # Then it uses the rediss:// (TLS) scheme on the serverless cache's endpoint
    cache_id, _ = by_path(template, "Engine/Cache/Cache")
    assert url_parts[0] == "rediss://"
    assert cache_id in references(url_parts)


def test_cache_requires_auth_with_the_generated_secret(synthesized: Synthesized) -> None:
    # Given the cache, its user group and its user
    template = synthesized.template_json
    secret_id, _ = by_path(template, "Engine/Cache/AuthToken/Resource")
    group_id, _ = by_path(template, "Engine/Cache/Users")
    _, user = by_path(template, "Engine/Cache/DefaultUser")
    _, cache = by_path(template, "Engine/Cache/Cache")
    # Then the cache admits only the user group, whose default user's password is the secret
    assert cache["Properties"]["UserGroupId"] == {"Ref": group_id}
    assert user["Properties"]["UserName"] == "default"
    assert user["Properties"]["AuthenticationMode"]["Type"] == "password"
    assert secret_id in references(user["Properties"]["AuthenticationMode"]["Passwords"])


def test_cache_is_valkey_in_the_private_subnets(synthesized: Synthesized) -> None:
    template = synthesized.template_json
    _, cache = by_path(template, "Engine/Cache/Cache")
    worker = template["Resources"][function_id(template, "Worker")]
    assert cache["Properties"]["Engine"] == "valkey"
    assert cache["Properties"]["SubnetIds"] == worker["Properties"]["VpcConfig"]["SubnetIds"]


def test_cache_accepts_connections_only_from_the_functions(synthesized: Synthesized) -> None:
    # Given the ingress rules of the cache security group
    template = synthesized.template_json
    cache_group, _ = by_path(template, "Engine/Cache/SecurityGroup/Resource")
    functions_group, _ = by_path(template, "Engine/Network/Functions/Resource")
    ingress = [
        rule["Properties"]
        for rule in of_type(template, "AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [cache_group, "GroupId"]}
    ]
    # Then every rule admits the functions' group on a Valkey port, and nothing else
    assert {rule["FromPort"] for rule in ingress} == {6379, 6380}
    sources = {rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in ingress}
    assert sources == {functions_group}


def test_dynamodb_and_sqs_are_reachable_without_the_nat(synthesized: Synthesized) -> None:
    # Given the VPC endpoints
    endpoints = of_type(synthesized.template_json, "AWS::EC2::VPCEndpoint").values()
    services = {str(e["Properties"]["ServiceName"]): e["Properties"] for e in endpoints}
    # Then DynamoDB has a gateway endpoint and SQS, KMS and Secrets Manager interface ones
    kinds = {
        service.split(".")[-1].rstrip("'}]\""): properties.get("VpcEndpointType", "Gateway")
        for service, properties in services.items()
    }
    assert kinds == {
        "dynamodb": "Gateway",
        "sqs": "Interface",
        "kms": "Interface",
        "secretsmanager": "Interface",
    }


def test_vpc_has_one_nat_gateway_by_default(synthesized: Synthesized) -> None:
    nat_gateways = of_type(synthesized.template_json, "AWS::EC2::NatGateway")
    assert len(nat_gateways) == 1


def test_vpc_traffic_is_flow_logged_to_a_group_kept_with_deletion_protection(
    synthesized: Synthesized, synthesized_without_deletion_protection: Synthesized
) -> None:
    # Given the VPC's one flow log
    template = synthesized.template_json
    ((_, flow_log),) = of_type(template, "AWS::EC2::FlowLog").items()
    vpc_id, _ = by_path(template, "Engine/Network/Vpc/Resource")
    group_id, group = by_path(template, "Engine/Network/FlowLogs/Resource")
    # Then it records the engine's VPC into its log group, which outlives the stack unless
    # deletion protection is off
    assert flow_log["Properties"]["ResourceId"] == {"Ref": vpc_id}
    assert flow_log["Properties"]["LogGroupName"] == {"Ref": group_id}
    assert group["DeletionPolicy"] == "Retain"
    _, removed = by_path(
        synthesized_without_deletion_protection.template_json, "Engine/Network/FlowLogs/Resource"
    )
    assert removed["DeletionPolicy"] == "Delete"
