"""The task table and the header-sealing key."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match
from infra_queries import Synthesized, by_path, of_type

from taskengine import names, schema

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def _table(synthesized: Synthesized) -> dict[str, Any]:
    (table,) = of_type(synthesized.template_json, "AWS::DynamoDB::Table").values()
    properties: dict[str, Any] = table["Properties"]
    return properties


def test_table_keys_and_indexes_match_the_schema_the_runtime_creates(
    synthesized: Synthesized,
) -> None:
    # Given the CreateTable request the local stack uses
    expected = schema.create_table_request("any")
    # When reading the deployed table's shape
    table = _table(synthesized)
    # Then keys, attribute types, indexes and projections are the same
    assert table["KeySchema"] == expected["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        expected["AttributeDefinitions"], key=str
    )
    assert sorted(table["GlobalSecondaryIndexes"], key=str) == sorted(
        expected["GlobalSecondaryIndexes"], key=str
    )
    assert table["BillingMode"] == expected["BillingMode"]


def test_table_has_point_in_time_recovery(synthesized: Synthesized) -> None:
    recovery = _table(synthesized)["PointInTimeRecoverySpecification"]
    assert recovery == {"PointInTimeRecoveryEnabled": True}


def test_table_expires_items_on_the_engine_ttl_attribute(synthesized: Synthesized) -> None:
    ttl = _table(synthesized)["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": names.TTL_ATTRIBUTE, "Enabled": True}


def test_table_is_encrypted_and_protected_from_deletion(synthesized: Synthesized) -> None:
    # Given the default context (deletion protection on)
    table = _table(synthesized)
    # Then encryption at rest is on, deletion protection is on and the table is retained
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionProtectionEnabled"] is True
    synthesized.template.has_resource(
        "AWS::DynamoDB::Table", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )


def test_table_and_header_key_go_with_the_stack_without_deletion_protection(
    synthesized_without_deletion_protection: Synthesized,
) -> None:
    # Given the stack synthesised with `-c taskengine:deletionProtection=false`
    template = synthesized_without_deletion_protection.template_json
    _, table = by_path(template, "Engine/Storage/Tasks/Resource")
    _, key = by_path(template, "Engine/Storage/HeaderKey/Resource")
    # Then the table has no deletion protection, and table and key are deleted with the stack
    assert table["Properties"]["DeletionProtectionEnabled"] is False
    for resource in (table, key):
        assert resource["DeletionPolicy"] == "Delete"
        assert resource["UpdateReplacePolicy"] == "Delete"


def test_header_key_rotates_and_has_the_engine_alias(synthesized: Synthesized) -> None:
    # Given the header key
    key_id, _ = by_path(synthesized.template_json, "Engine/Storage/HeaderKey/Resource")
    # Then it rotates and its alias ends with the runtime's alias stem
    synthesized.template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    alias_stem = names.HEADER_KEY_ALIAS.removeprefix("alias/")
    synthesized.template.has_resource_properties(
        "AWS::KMS::Alias",
        {
            "AliasName": Match.string_like_regexp(f"^alias/TaskEngine-{alias_stem}$"),
            "TargetKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        },
    )
