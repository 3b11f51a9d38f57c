"""Secrets in a target are sealed with KMS before they are stored, and unsealed per attempt.

Secret header values and URLs whose query names a secret parameter (api_key=...) are kept
only encrypted; stored records, API responses and logs show them redacted.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from taskengine.errors import DependencyError, InvalidRequestError
from taskengine.models import REDACTED, HttpTarget, is_secret_header

if TYPE_CHECKING:
    from types_boto3_kms import KMSClient

# KMS Encrypt takes at most 4096 bytes of plaintext.
MAX_SEALED_BYTES = 4096


class SealedParts(BaseModel):
    """What is kept only encrypted: secret header values and a URL with secret parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    headers: dict[str, str] = Field(default_factory=dict)
    url: str | None = None

    def apply(self, target: HttpTarget) -> HttpTarget:
        """The target as it must be sent: with the real URL."""
        return target.model_copy(update={"url": self.url}) if self.url else target


_QUERY_SEPARATORS = re.compile(r"([&;])")


def _redact_query(url: str) -> str | None:
    """The URL with secret-looking query values redacted, or None when it has none.

    Works on the raw query text, split on "&" and ";" (some servers take either), so every
    other byte of the URL stays exactly as the client wrote it.
    """
    parts = urlsplit(url)
    pieces = _QUERY_SEPARATORS.split(parts.query)
    found = False
    for index in range(0, len(pieces), 2):
        name, equals, _ = pieces[index].partition("=")
        if equals and is_secret_header(unquote_plus(name)):
            pieces[index] = f"{name}={REDACTED}"
            found = True
    if not found:
        return None
    return urlunsplit(parts._replace(query="".join(pieces)))


def split_secrets(target: HttpTarget) -> tuple[HttpTarget, SealedParts | None]:
    """The target as it may be stored and shown, and the parts to seal (None if nothing)."""
    secrets = {name: value for name, value in target.headers.items() if is_secret_header(name)}
    redacted_url = _redact_query(target.url)
    if not secrets and redacted_url is None:
        return target, None
    headers = {
        name: REDACTED if name in secrets else value for name, value in target.headers.items()
    }
    shown = target.model_copy(update={"headers": headers, "url": redacted_url or target.url})
    return shown, SealedParts(headers=secrets, url=target.url if redacted_url else None)


class HeaderSealer:
    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def seal(self, task_id: str, parts: SealedParts) -> bytes:
        plaintext = parts.model_dump_json(exclude_none=True).encode()
        if len(plaintext) > MAX_SEALED_BYTES:
            raise InvalidRequestError(
                f"secret headers and URL exceed {MAX_SEALED_BYTES} bytes", field="target.headers"
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

    def unseal(self, task_id: str, blob: bytes) -> SealedParts:
        try:
            response = self._client.decrypt(
                CiphertextBlob=blob, EncryptionContext={"task_id": task_id}
            )
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"kms Decrypt failed: {type(error).__name__}") from error
        return SealedParts.model_validate_json(response["Plaintext"])

    def ping(self) -> None:
        try:
            self._client.describe_key(KeyId=self._key_id)
        except (ClientError, BotoCoreError) as error:
            raise DependencyError(f"kms DescribeKey failed: {type(error).__name__}") from error
