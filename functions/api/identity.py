"""Who is calling: the tenant a task belongs to and the actor recorded on admin actions."""

from __future__ import annotations

from typing import Any

from taskengine.settings import EngineSettings


def _stable_principal(arn: str) -> str:
    """An assumed role's ARN without its session name, which changes from session to session.

    arn:aws:sts::123456789012:assumed-role/billing/i-0abc becomes
    arn:aws:sts::123456789012:assumed-role/billing, so every session of a role is one tenant.
    """
    prefix, _, resource = arn.partition(":assumed-role/")
    if not resource:
        return arn
    role = resource.split("/", 1)[0]
    return f"{prefix}:assumed-role/{role}"


def caller(event: dict[str, Any], settings: EngineSettings) -> str:
    """The authenticated principal: IAM user ARN or JWT subject; the default tenant locally.

    API Gateway only invokes the function after its IAM or JWT authorizer accepted the
    request, so an event without an identity can only come from the local stack.
    """
    authorizer = event.get("requestContext", {}).get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    if iam.get("userArn"):
        return _stable_principal(str(iam["userArn"]))
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    if claims.get("sub"):
        issuer = claims.get("iss", "")
        return f"{issuer}#{claims['sub']}" if issuer else str(claims["sub"])
    if settings.local_mode:
        return settings.default_tenant
    raise PermissionError("request carries no authenticated identity")
