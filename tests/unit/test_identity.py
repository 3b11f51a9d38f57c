"""Who a request belongs to: the IAM principal, the JWT subject, or the local default."""

from __future__ import annotations

from typing import Any

import pytest

from functions.api.identity import caller
from taskengine.settings import EngineSettings


def event(authorizer: dict[str, Any] | None) -> dict[str, Any]:
    return {"requestContext": {"authorizer": authorizer} if authorizer else {}}


def test_every_session_of_an_assumed_role_is_the_same_tenant() -> None:
    # Given two sessions of one role
    arn = "arn:aws:sts::123456789012:assumed-role/billing/{}"
    first = event({"iam": {"userArn": arn.format("i-0abc")}})
    second = event({"iam": {"userArn": arn.format("i-0def")}})

    # When their tenants are worked out, then they are the role itself
    settings = EngineSettings()
    assert caller(first, settings) == "arn:aws:sts::123456789012:assumed-role/billing"
    assert caller(first, settings) == caller(second, settings)


def test_an_iam_user_is_its_own_tenant() -> None:
    user = "arn:aws:iam::123456789012:user/deploy"

    assert caller(event({"iam": {"userArn": user}}), EngineSettings()) == user


def test_a_jwt_caller_is_named_by_issuer_and_subject() -> None:
    claims = {"iss": "https://issuer.example", "sub": "svc-42"}

    tenant = caller(event({"jwt": {"claims": claims}}), EngineSettings())

    assert tenant == "https://issuer.example#svc-42"


def test_without_an_identity_only_local_mode_falls_back_to_the_default_tenant() -> None:
    assert caller(event(None), EngineSettings(local_mode=True)) == "default"
    with pytest.raises(PermissionError):
        caller(event(None), EngineSettings(local_mode=False))
