"""Account, region and ARN shapes of the local stack; moto accepts any fixed values."""

from __future__ import annotations

from typing import Final

REGION: Final = "us-east-1"
ACCOUNT_ID: Final = "123456789012"
ACCESS_KEY: Final = "testing"


def lambda_arn(function_name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"


def events_rule_arn(rule_name: str) -> str:
    return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"
