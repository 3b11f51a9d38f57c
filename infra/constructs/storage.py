"""The task table and the KMS key that seals secret HTTP headers stored in it."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.retention import removal_policy
from taskengine import names, schema

ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def _attribute(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=ATTRIBUTE_TYPES[schema.KEY_ATTRIBUTES[name]])


class EngineStorage(Construct):
    """An on-demand table shaped by taskengine.schema, with PITR, TTL and encryption at rest.

    `deletion_protection` turns on DynamoDB deletion protection and keeps the table (and the
    header key, without which sealed headers cannot be read) when the stack is deleted.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, name_prefix: str, deletion_protection: bool
    ) -> None:
        super().__init__(scope, construct_id)
        kept = removal_policy(deletion_protection)
        self.table = dynamodb.Table(
            self,
            "Tasks",
            table_name=f"{name_prefix}-{names.TABLE_NAME}",
            partition_key=_attribute(names.PK),
            sort_key=_attribute(names.SK),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=names.TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            deletion_protection=deletion_protection,
            removal_policy=kept,
        )
        for index in schema.GLOBAL_SECONDARY_INDEXES:
            self.table.add_global_secondary_index(
                index_name=index["name"],
                partition_key=_attribute(index["pk"]),
                sort_key=_attribute(index["sk"]),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        alias = names.HEADER_KEY_ALIAS.removeprefix("alias/")
        self.header_key = kms.Key(
            self,
            "HeaderKey",
            description="taskengine: seals secret HTTP headers of stored tasks",
            alias=f"alias/{name_prefix}-{alias}",
            enable_key_rotation=True,
            removal_policy=kept,
        )
