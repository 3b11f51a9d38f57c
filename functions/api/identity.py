"""Who is calling: the tenant a task belongs to and the actor recorded on admin actions."""

from __future__ import annotations

from typing import Any

from taskengine.settings import EngineSettings


def caller(event: dict[str, Any], settings: EngineSettings) -> str:
    """The authenticated principal: IAM user ARN or JWT subject; the default tenant locally.

    API Gateway only invokes the function after its IAM or JWT authorizer accepted the
    request, so an event without an identity can only come from the local stack.
    """
    authorizer = event.get("requestContext", {}).get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    if iam.get("userArn"):
        return str(iam["userArn"])
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    if claims.get("sub"):
        issuer = claims.get("iss", "")
        return f"{issuer}#{claims['sub']}" if issuer else str(claims["sub"])
    if settings.local_mode:
        return settings.default_tenant
    raise PermissionError("request carries no authenticated identity")
