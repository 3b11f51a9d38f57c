"""Checks on the raw request that must run before the resolver parses it.

The resolver decodes and parses bodies itself and turns some failures (invalid UTF-8, JSON
nested thousands deep, integers of thousands of digits) into 500s; media types it compares
case-sensitively. Catching those here keeps every bad request a 4xx problem.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from functions.api.problems import PROBLEM_CONTENT_TYPE, problem_body

JSON_MEDIA_TYPE = "application/json"
# Deeper bodies are refused: parsing and validating them again later would exhaust the stack.
MAX_DEPTH = 64


def _is_json(media_type: str) -> bool:
    return media_type == JSON_MEDIA_TYPE or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _rejection(status: int, detail: str, field: str, event: dict[str, Any]) -> dict[str, Any]:
    kind = "unsupported-media-type" if status == 415 else "validation-error"
    body = problem_body(
        status,
        f"{field}: {detail}",
        kind=kind,
        instance=str(event.get("rawPath", "")),
        field=field,
        errors=[{"field": field, "message": detail, "type": kind}],
    )
    return {
        "statusCode": status,
        "headers": {"Content-Type": PROBLEM_CONTENT_TYPE},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, level + 1) for child in item)
    return deepest


def drop_empty_query_parameters(event: dict[str, Any]) -> None:
    """`?status=&limit=` means no filter and the default page, as an absent parameter does."""
    query = event.get("queryStringParameters")
    if query:
        event["queryStringParameters"] = {name: value for name, value in query.items() if value}


def check_request(event: dict[str, Any]) -> dict[str, Any] | None:
    """A ready problem response for a body the API cannot read, else None.

    Only requests that carry a body are checked: a GET with a stray Content-Type is fine.
    Normalises the Content-Type of JSON bodies in place so the resolver accepts any spelling.
    """
    raw = event.get("body")
    headers: dict[str, str] = event.get("headers") or {}
    name = next((key for key in headers if key.lower() == "content-type"), None)
    if name is not None:
        media_type = headers[name].split(";", 1)[0].strip().lower()
        if raw and not _is_json(media_type):
            return _rejection(
                415, "the body must be application/json", "header.Content-Type", event
            )
        # Without a body the header says nothing; with one it is JSON in some spelling.
        headers[name] = JSON_MEDIA_TYPE
    if not raw:
        return None

    try:
        data = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw
        text = data.decode() if isinstance(data, bytes) else data
        parsed = json.loads(text)
    except (binascii.Error, UnicodeDecodeError):
        return _rejection(422, "request body is not valid UTF-8", "body", event)
    except (ValueError, RecursionError):
        return _rejection(422, "request body is not valid JSON", "body", event)
    if _depth(parsed) > MAX_DEPTH:
        return _rejection(422, f"JSON nests deeper than {MAX_DEPTH} levels", "body", event)
    return None
