"""Secret request headers are sealed with KMS before they are stored, and unsealed per attempt.

Stored records, API responses and logs only ever show the header names with a redacted value.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from taskengine.errors import DependencyError, InvalidRequestError
from taskengine.models import REDACTED, HttpTarget, is_secret_header

if TYPE_CHECKING:
    from types_boto3_kms import KMSClient

# KMS Encrypt takes at most 4096 bytes of plaintext.
MAX_SEALED_BYTES = 4096


def split_secret_headers(target: HttpTarget) -> tuple[HttpTarget, dict[str, str]]:
    """The target with secret header values redacted, and the secret headers themselves."""
    secrets = {name: value for name, value in target.headers.items() if is_secret_header(name)}
    if not secrets:
        return target, {}
    redacted = {
        name: REDACTED if name in secrets else value for name, value in target.headers.items()
    }
    return target.model_copy(update={"headers": redacted}), secrets


class HeaderSealer:
    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def seal(self, task_id: str, headers: dict[str, str]) -> bytes:
        plaintext = json.dumps(headers, separators=(",", ":")).encode()
        if len(plaintext) > MAX_SEALED_BYTES:
            raise InvalidRequestError(
                f"secret headers exceed {MAX_SEALED_BYTES} bytes", field="target.headers"
            )
        try:
            response = self._client.encrypt(
                KeyId=self._key_id,
                Plaintext=plaintext,
                EncryptionContext={"task_id": task_id},
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"kms Encrypt failed: {type(error).__name__}") from error
        return response["CiphertextBlob"]

    def unseal(self, task_id: str, blob: bytes) -> dict[str, str]:
        try:
            response = self._client.decrypt(
                CiphertextBlob=blob, EncryptionContext={"task_id": task_id}
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"kms Decrypt failed: {type(error).__name__}") from error
        headers: dict[str, str] = json.loads(response["Plaintext"])
        return headers

    def ping(self) -> None:
        try:
            self._client.describe_key(KeyId=self._key_id)
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"kms DescribeKey failed: {type(error).__name__}") from error
