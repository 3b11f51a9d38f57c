"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response

PROBLEM_CONTENT_TYPE = "application/problem+json"
_PROBLEM_BASE = "https://taskengine.dev/problems/"
_LOCATION_PREFIXES = {"body": "", "query": "", "path": "", "header": "header."}
_UNION_TAGS = {"http", "lambda", "HttpTarget", "LambdaTarget"}


def field_name(loc: Sequence[Any]) -> str:
    """A pydantic error location as a dotted field path: ("body", "target", "http", "url")
    becomes "target.url"; list indexes become [n]."""
    parts = list(loc)
    prefix = ""
    if parts and parts[0] in _LOCATION_PREFIXES:
        prefix = _LOCATION_PREFIXES[parts.pop(0)]
    path = ""
    for index, part in enumerate(parts):
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        if part in _UNION_TAGS and index > 0 and parts[index - 1] == "target":
            continue
        path += f".{part}" if path else str(part)
    return prefix + path if path else (prefix.rstrip(".") or "body")


def problem_body(
    status: int,
    detail: str,
    *,
    kind: str,
    instance: str | None = None,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": _PROBLEM_BASE + kind,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if field:
        body["field"] = field
    if errors:
        body["errors"] = errors
    return body


def problem(
    status: int,
    detail: str,
    *,
    kind: str,
    instance: str | None = None,
    field: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[str]:
    body = problem_body(status, detail, kind=kind, instance=instance, field=field, errors=errors)
    return Response(
        status_code=status,
        content_type=PROBLEM_CONTENT_TYPE,
        body=json.dumps(body),
        headers=headers,
    )


def validation_problem(raw_errors: Sequence[Any], instance: str) -> Response[str]:
    errors = []
    for error in raw_errors:
        loc = error.get("loc", ()) if isinstance(error, dict) else ()
        kind = error.get("type", "invalid") if isinstance(error, dict) else "invalid"
        message = error.get("msg", "invalid value") if isinstance(error, dict) else str(error)
        if kind == "json_invalid":
            loc = ("body",)
            message = "request body is not valid JSON"
        errors.append({"field": field_name(loc), "message": message, "type": kind})
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    return problem(
        422,
        f"{first['field']}: {first['message']}",
        kind="validation-error",
        instance=instance,
        field=first["field"],
        errors=errors,
    )
