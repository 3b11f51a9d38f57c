"""Create the engine's AWS resources in a moto server, named as the CDK stack names them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

from taskengine import names, schema
from taskengine_local import aws_constants

if TYPE_CHECKING:
    from types_boto3_sqs import SQSClient

# Matches the deployed work queue: a message that keeps failing is moved on its sixth receive.
MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class Resources:
    table_name: str
    work_queue_url: str
    work_queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    header_key_id: str


def create_resources(endpoint_url: str, *, visibility_timeout_seconds: int) -> Resources:
    session = boto3.session.Session(
        aws_access_key_id=aws_constants.ACCESS_KEY,
        aws_secret_access_key=aws_constants.ACCESS_KEY,
        region_name=aws_constants.REGION,
    )
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    dynamodb.create_table(**schema.create_table_request(names.TABLE_NAME))
    dynamodb.update_time_to_live(
        TableName=names.TABLE_NAME,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": names.TTL_ATTRIBUTE},
    )

    sqs = session.client("sqs", endpoint_url=endpoint_url)
    dlq_url, dlq_arn = _create_queue(sqs, names.DEAD_LETTER_QUEUE_NAME, {})
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    work_url, work_arn = _create_queue(
        sqs,
        names.WORK_QUEUE_NAME,
        {
            "VisibilityTimeout": str(visibility_timeout_seconds),
            "RedrivePolicy": json.dumps(redrive),
        },
    )

    kms = session.client("kms", endpoint_url=endpoint_url)
    key_id = kms.create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")
    kms.create_alias(AliasName=names.HEADER_KEY_ALIAS, TargetKeyId=key_id["KeyMetadata"]["KeyId"])

    return Resources(
        table_name=names.TABLE_NAME,
        work_queue_url=work_url,
        work_queue_arn=work_arn,
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
        header_key_id=names.HEADER_KEY_ALIAS,
    )


def _create_queue(sqs: SQSClient, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]  # type: ignore[arg-type]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return url, arn["QueueArn"]
