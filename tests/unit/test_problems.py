"""Problem details: pydantic error locations become the field names clients see."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.api.problems import PROBLEM_CONTENT_TYPE, field_name, problem, validation_problem


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "target", "http", "url"), "target.url"),
        (("body", "target", "lambda", "function_name"), "target.function_name"),
        (("body", "target", "http", "headers", "X-Key"), "target.headers.X-Key"),
        (("body", "target", "http", "body", "items", 2), "target.body.items[2]"),
        (("body", "retry", "max_attempts"), "retry.max_attempts"),
        (("body", "delay_seconds"), "delay_seconds"),
        (("body",), "body"),
        ((), "body"),
        (("query", "limit"), "limit"),
        (("path", "task_id"), "task_id"),
        (("header", "Idempotency-Key"), "header.Idempotency-Key"),
    ],
)
def test_error_locations_become_dotted_field_names(loc: tuple[Any, ...], expected: str) -> None:
    assert field_name(loc) == expected


def test_a_field_named_like_a_union_tag_outside_target_is_kept() -> None:
    assert field_name(("body", "retry", "http")) == "retry.http"


def test_a_problem_is_rfc_9457_json() -> None:
    response = problem(409, "taken", kind="conflict", instance="/v1/tasks", field="status")

    body = json.loads(response.body)
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert response.status_code == 409
    assert body == {
        "type": "https://taskengine.dev/problems/conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "taken",
        "instance": "/v1/tasks",
        "field": "status",
    }


def test_a_validation_problem_names_the_first_field_and_lists_every_error() -> None:
    errors = [
        {"loc": ("body", "target", "http", "url"), "msg": "bad url", "type": "value_error"},
        {"loc": ("body", "delay_seconds"), "msg": "too small", "type": "greater_than_equal"},
    ]

    body = json.loads(validation_problem(errors, "/v1/tasks").body)

    assert body["status"] == 422
    assert body["field"] == "target.url"
    assert [error["field"] for error in body["errors"]] == ["target.url", "delay_seconds"]


def test_invalid_json_is_reported_against_the_body() -> None:
    errors = [{"loc": ("body", 7), "msg": "Expecting value", "type": "json_invalid"}]

    body = json.loads(validation_problem(errors, "/v1/tasks").body)

    assert body["field"] == "body"
    assert body["detail"] == "body: request body is not valid JSON"


def test_a_validation_problem_without_errors_still_names_the_body() -> None:
    body = json.loads(validation_problem([], "/v1/tasks").body)

    assert body["field"] == "body"
