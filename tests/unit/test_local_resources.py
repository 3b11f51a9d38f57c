"""The local stack creates the resources the engine expects, named as the CDK stack names them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from taskengine import names
from taskengine_local.resources import MAX_RECEIVE_COUNT, Resources, create_resources


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def resources(moto_url: str) -> Resources:
    # moto keeps its state per process, shared by every server in it: start from empty.
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    return create_resources(moto_url, visibility_timeout_seconds=17)


def _client(service: str, moto_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_the_work_queue_redrives_to_the_dead_letter_queue(
    moto_url: str, resources: Resources
) -> None:
    # Given / When the resources are created
    attributes = _client("sqs", moto_url).get_queue_attributes(
        QueueUrl=resources.work_queue_url, AttributeNames=["All"]
    )["Attributes"]

    # Then the work queue's redrive policy targets the DLQ after maxReceiveCount receives
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": resources.dead_letter_queue_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }
    assert attributes["VisibilityTimeout"] == "17"
    assert resources.work_queue_url.endswith(names.WORK_QUEUE_NAME)
    assert resources.dead_letter_queue_url.endswith(names.DEAD_LETTER_QUEUE_NAME)


def test_the_table_has_the_engines_indexes(moto_url: str, resources: Resources) -> None:
    # Given / When
    table = _client("dynamodb", moto_url).describe_table(TableName=resources.table_name)["Table"]

    # Then
    assert resources.table_name == names.TABLE_NAME
    indexes = {index["IndexName"] for index in table["GlobalSecondaryIndexes"]}
    assert indexes == {names.DUE_INDEX, names.STATUS_INDEX}


def test_the_header_key_alias_encrypts(moto_url: str, resources: Resources) -> None:
    # Given the alias the engine seals secret headers with
    kms = _client("kms", moto_url)

    # When data is encrypted under it and decrypted
    sealed = kms.encrypt(KeyId=resources.header_key_id, Plaintext=b"Bearer s3cret")
    opened = kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"])

    # Then the round trip works and the alias is the shared name
    assert opened["Plaintext"] == b"Bearer s3cret"
    assert resources.header_key_id == names.HEADER_KEY_ALIAS
