"""The three engine functions: shared settings, environment and least-privilege grants."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from infra_queries import (
    Synthesized,
    allowed_actions,
    by_path,
    default_route,
    function_id,
    resources_for,
    subnet_ids,
)

from infra.app import DEFAULT_STACK_NAME
from infra.constructs import TaskEngine, TaskEngineProps
from taskengine import names

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

FUNCTIONS = ("Api", "Worker", "Scheduler")


def _properties(synthesized: Synthesized, name: str) -> dict[str, Any]:
    template = synthesized.template_json
    properties: dict[str, Any] = template["Resources"][function_id(template, name)]["Properties"]
    return properties


def _actions(synthesized: Synthesized, name: str) -> set[str]:
    template = synthesized.template_json
    return allowed_actions(template, function_id(template, name))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_runs_python312_on_arm64_traced_with_json_logs(
    synthesized: Synthesized, name: str
) -> None:
    # Given one engine function
    properties = _properties(synthesized, name)
    # Then it uses the shared runtime settings and both layers
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert properties["LoggingConfig"]["LogFormat"] == "JSON"
    assert len(properties["Layers"]) == 2
    assert properties["Handler"] == f"functions.{name.lower()}.handler.lambda_handler"


@pytest.mark.parametrize(
    ("name", "memory_mb", "timeout_seconds"),
    [("Api", 512, 30), ("Worker", 1024, 300), ("Scheduler", 512, 30)],
)
def test_function_has_its_memory_timeout_and_a_month_of_logs(
    synthesized: Synthesized, name: str, memory_mb: int, timeout_seconds: int
) -> None:
    # Given one engine function with the default props
    template = synthesized.template_json
    properties = _properties(synthesized, name)
    log_group_id, log_group = by_path(template, f"Engine/Functions/{name}/Logs/Resource")
    # Then it has its own memory and timeout, runs python3.12 on arm64, and logs to its own
    # log group, which keeps a month of logs and outlives the stack (deletion protection on)
    assert properties["MemorySize"] == memory_mb
    assert properties["Timeout"] == timeout_seconds
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["LoggingConfig"]["LogGroup"] == {"Ref": log_group_id}
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert log_group["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_log_group_goes_with_the_stack_without_deletion_protection(
    synthesized_without_deletion_protection: Synthesized, name: str
) -> None:
    template = synthesized_without_deletion_protection.template_json
    _, log_group = by_path(template, f"Engine/Functions/{name}/Logs/Resource")
    assert log_group["DeletionPolicy"] == "Delete"
    assert log_group["UpdateReplacePolicy"] == "Delete"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_runs_in_the_private_subnets(synthesized: Synthesized, name: str) -> None:
    # Given the VPC's private subnets (behind the NAT, no route from the internet)
    template = synthesized.template_json
    private = subnet_ids(template, "Private")
    assert len(private) == 2
    for subnet in private:
        route = default_route(template, subnet)
        assert "NatGatewayId" in route
        assert "GatewayId" not in route
    functions_group, _ = by_path(template, "Engine/Network/Functions/Resource")
    # When reading the function's VPC configuration
    vpc_config = _properties(synthesized, name)["VpcConfig"]
    # Then it attaches to exactly those subnets, with the functions' security group
    assert sorted(vpc_config["SubnetIds"], key=str) == sorted(private, key=str)
    assert vpc_config["SecurityGroupIds"] == [{"Fn::GetAtt": [functions_group, "GroupId"]}]


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_gets_every_engine_setting_from_the_environment(
    synthesized: Synthesized, name: str
) -> None:
    # Given one engine function's environment
    variables = _properties(synthesized, name)["Environment"]["Variables"]
    # Then it names the resources by the variables taskengine.settings reads
    for variable in (
        names.ENV_TABLE_NAME,
        names.ENV_WORK_QUEUE_URL,
        names.ENV_DEAD_LETTER_QUEUE_URL,
        names.ENV_HEADER_KEY_ID,
        names.ENV_REDIS_URL,
        names.ENV_REDIS_SECRET_ARN,
        names.ENV_DUE_SHARDS,
    ):
        assert variable in variables
    assert variables["POWERTOOLS_SERVICE_NAME"] == names.SERVICE
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == names.METRICS_NAMESPACE
    # and the deployment its metrics are dimensioned by, which the alarms watch
    assert variables[names.ENV_DEPLOYMENT] == DEFAULT_STACK_NAME


def test_worker_http_timeout_leaves_a_margin_inside_the_function_timeout(
    synthesized: Synthesized,
) -> None:
    properties = _properties(synthesized, "Worker")
    max_http = int(properties["Environment"]["Variables"]["TASKENGINE_MAX_HTTP_TIMEOUT_SECONDS"])
    assert 0 < max_http < properties["Timeout"]


def test_worker_can_decrypt_headers_but_not_encrypt(synthesized: Synthesized) -> None:
    actions = _actions(synthesized, "Worker")
    assert "kms:Decrypt" in actions
    assert not any(a.startswith(("kms:Encrypt", "kms:ReEncrypt", "kms:Generate")) for a in actions)


def test_api_can_encrypt_headers_but_not_decrypt(synthesized: Synthesized) -> None:
    actions = _actions(synthesized, "Api")
    assert "kms:Encrypt" in actions
    assert "kms:Decrypt" not in actions


def test_scheduler_has_no_access_to_the_header_key(synthesized: Synthesized) -> None:
    assert not any(a.startswith("kms:") for a in _actions(synthesized, "Scheduler"))


def test_only_the_worker_can_invoke_lambda_functions(synthesized: Synthesized) -> None:
    assert "lambda:InvokeFunction" in _actions(synthesized, "Worker")
    assert "lambda:InvokeFunction" not in _actions(synthesized, "Api")
    assert "lambda:InvokeFunction" not in _actions(synthesized, "Scheduler")


def test_worker_invokes_only_functions_of_its_own_account_by_default(
    synthesized: Synthesized,
) -> None:
    # Given no invocable_function_arns in the context
    template = synthesized.template_json
    (arn,) = resources_for(template, function_id(template, "Worker"), "lambda:InvokeFunction")
    # Then the resource is this account's and region's functions, not "*"
    parts = arn["Fn::Join"][1]
    assert {"Ref": "AWS::AccountId"} in parts
    assert {"Ref": "AWS::Region"} in parts
    assert parts[-1].endswith(":function:*")


def test_only_the_api_can_receive_and_delete_dead_letters(synthesized: Synthesized) -> None:
    # Given the dead-letter queue
    template = synthesized.template_json
    dlq_id, _ = by_path(template, "Engine/Queues/DeadLetter/Resource")
    # Then the api (admin redrive) may receive from it, the worker and scheduler may not
    for name, may_receive in (("Api", True), ("Worker", False), ("Scheduler", False)):
        resources = resources_for(template, function_id(template, name), "sqs:ReceiveMessage")
        assert ({"Fn::GetAtt": [dlq_id, "Arn"]} in resources) is may_receive


def test_only_the_worker_consumes_the_work_queue(synthesized: Synthesized) -> None:
    template = synthesized.template_json
    work_id, _ = by_path(template, "Engine/Queues/Work/Resource")
    for name, may_receive in (("Api", False), ("Worker", True), ("Scheduler", False)):
        resources = resources_for(template, function_id(template, name), "sqs:ReceiveMessage")
        assert ({"Fn::GetAtt": [work_id, "Arn"]} in resources) is may_receive


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_sends_to_both_queues_and_reads_the_cache_secret(
    synthesized: Synthesized, name: str
) -> None:
    actions = _actions(synthesized, name)
    assert {"sqs:SendMessage", "secretsmanager:GetSecretValue"} <= actions


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_table_access_is_item_level_without_scans_or_table_changes(
    synthesized: Synthesized, name: str
) -> None:
    # Given the function's DynamoDB actions
    dynamodb = {a for a in _actions(synthesized, name) if a.startswith("dynamodb:")}
    # Then it may read and write items but never scan, batch-write or change the table
    assert {"dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:GetItem"} <= dynamodb
    assert not dynamodb & {
        "dynamodb:Scan",
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteTable",
        "dynamodb:UpdateTable",
        "dynamodb:*",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # DescribeTable: /health; DeleteItem: Powertools' idempotency record of a redrive
        ("Api", {"DescribeTable", "GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"}),
        ("Worker", {"GetItem", "Query", "PutItem", "UpdateItem"}),
        ("Scheduler", {"GetItem", "Query", "PutItem", "UpdateItem"}),
    ],
)
def test_function_gets_only_the_table_actions_its_code_calls(
    synthesized: Synthesized, name: str, expected: set[str]
) -> None:
    # Given that no code calls BatchGetItem and no transaction holds a ConditionCheck item
    # Then the function's DynamoDB actions are exactly those its code (and Powertools) calls
    dynamodb = {a for a in _actions(synthesized, name) if a.startswith("dynamodb:")}
    assert dynamodb == {f"dynamodb:{action}" for action in expected}


def test_no_function_policy_grants_every_action(synthesized: Synthesized) -> None:
    for name in FUNCTIONS:
        assert not any(a == "*" or a.endswith(":*") for a in _actions(synthesized, name))


@pytest.mark.usefixtures("built_assets")
def test_worker_invokes_only_the_listed_functions_when_given() -> None:
    # Given an engine told which functions `lambda` targets may name
    billing = "arn:aws:lambda:us-east-1:111122223333:function:billing"
    stack = cdk.Stack(cdk.App(), "Scoped")
    engine = TaskEngine(stack, "Engine", TaskEngineProps(invocable_function_arns=[billing]))
    # When reading the worker's policy (resolved without a full synth)
    policy = engine.functions.worker.role.node.find_child("DefaultPolicy")
    assert isinstance(policy, iam.Policy)
    statements = stack.resolve(policy.document.to_json())["Statement"]
    # Then lambda:InvokeFunction is allowed on exactly that function
    invoke = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert [s["Resource"] for s in invoke] == [billing]
