"""Request models: what the API accepts and what it refuses before anything is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from taskengine.errors import InvalidRequestError
from taskengine.models import (
    HttpTarget,
    LambdaTarget,
    RetryPolicyInput,
    SubmitTaskRequest,
    find_non_finite,
    is_secret_header,
)
from taskengine.settings import RetryDefaults
from taskengine.submission import first_run_at, resolve_retry_policy

URL = "https://svc.internal/hook"


def submit(**fields: Any) -> SubmitTaskRequest:
    body: dict[str, Any] = {"target": {"type": "http", "url": URL}}
    body.update(fields)
    return SubmitTaskRequest.model_validate_json(json.dumps(body))


def error_locs(error: pytest.ExceptionInfo[ValidationError]) -> list[tuple[Any, ...]]:
    return [tuple(item["loc"]) for item in error.value.errors()]


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_an_http_body_are_refused(text: str) -> None:
    # json.dumps writes NaN and Infinity as the bare tokens a careless client would send.
    raw = json.dumps({"target": {"type": "http", "url": URL, "body": {"x": [1, float(text)]}}})
    assert text in raw

    with pytest.raises(ValidationError) as error:
        SubmitTaskRequest.model_validate_json(raw)

    assert ("target", "http", "body") in error_locs(error)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_in_a_lambda_payload_are_refused(value: float) -> None:
    with pytest.raises(ValidationError):
        LambdaTarget(function_name="billing-sync", payload={"deep": [{"x": value}]})


def test_find_non_finite_names_the_json_path() -> None:
    assert find_non_finite({"a": [1, {"b": float("nan")}]}) == "a[1].b"
    assert find_non_finite(float("inf")) == "$"
    assert find_non_finite({"a": 1.5, "b": [1e-7]}) is None


def test_floats_in_the_body_keep_their_exact_value() -> None:
    raw = '{"target": {"type": "http", "url": "' + URL + '", "body": {"a": 12.5, "b": 1e-7}}}'

    request = SubmitTaskRequest.model_validate_json(raw)

    assert isinstance(request.target, HttpTarget)
    assert request.target.body == {"a": 12.5, "b": 1e-7}
    assert json.loads(request.target.model_dump_json())["body"] == {"a": 12.5, "b": 1e-7}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"surprise": 1}, ("surprise",)),
        ({"target": {"type": "http", "url": URL, "verb": "POST"}}, ("target", "http", "verb")),
        ({"retry": {"max_attempts": 2, "tries": 3}}, ("retry", "tries")),
    ],
)
def test_extra_fields_are_forbidden(body: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as error:
        submit(**body)

    assert loc in error_locs(error)


def test_a_negative_delay_is_invalid() -> None:
    with pytest.raises(ValidationError) as error:
        submit(delay_seconds=-1)

    assert ("delay_seconds",) in error_locs(error)


def test_a_delay_of_many_hours_is_valid() -> None:
    assert submit(delay_seconds=54_524).delay_seconds == 54_524


def test_schedule_at_without_a_time_zone_is_invalid() -> None:
    with pytest.raises(ValidationError, match="zone offset"):
        submit(schedule_at="2030-01-01T00:00:00")


@pytest.mark.parametrize(
    "value",
    [1796400000, "1796400000", "2027-01-01T00:00Z", "2027-01-01 00:00:00Z", "2027-01-01", True],
)
def test_schedule_at_must_be_an_rfc3339_time(value: object) -> None:
    with pytest.raises(ValidationError) as error:
        submit(schedule_at=value)

    assert error_locs(error) == [("schedule_at",)]


@pytest.mark.parametrize(
    "value", ["2027-01-01T00:00:00Z", "2027-01-01t00:00:00.123456z", "2027-01-01T01:00:00+01:00"]
)
def test_schedule_at_in_rfc3339_forms_is_valid(value: str) -> None:
    assert submit(schedule_at=value).schedule_at == datetime(2027, 1, 1, tzinfo=UTC).replace(
        microsecond=123456 if "." in value else 0
    )


@pytest.mark.parametrize("value", [10, 10.0])
def test_a_whole_delay_is_accepted_as_json_writes_it(value: float) -> None:
    assert submit(delay_seconds=value).delay_seconds == 10


@pytest.mark.parametrize("value", ["10", True, 10.5])
def test_a_delay_as_text_a_flag_or_a_fraction_is_refused(value: object) -> None:
    with pytest.raises(ValidationError) as error:
        submit(delay_seconds=value)

    assert error_locs(error) == [("delay_seconds",)]


def test_schedule_at_as_an_aware_datetime_round_trips() -> None:
    request = submit(schedule_at="2027-01-01T00:00:00.1234567891Z")

    assert SubmitTaskRequest.model_validate(request.model_dump()) == request


def test_schedule_at_with_a_time_zone_is_valid() -> None:
    assert submit(schedule_at="2030-01-01T00:00:00Z").schedule_at is not None


def test_delay_and_schedule_at_together_are_refused_naming_schedule_at() -> None:
    # Given a request with both start times (valid as a shape)
    request = submit(delay_seconds=5, schedule_at="2030-01-01T00:00:00Z")

    # When the submission works out the first run time, then it refuses, naming the field
    with pytest.raises(InvalidRequestError, match="not both") as error:
        first_run_at(request, datetime(2029, 1, 1, tzinfo=UTC))
    assert error.value.field == "schedule_at"


@pytest.mark.parametrize("url", ["ftp://svc/x", "svc/hook", "http://", "file:///etc/passwd"])
def test_urls_must_be_absolute_http(url: str) -> None:
    with pytest.raises(ValidationError) as error:
        HttpTarget(url=url)

    assert ("url",) in error_locs(error)


@pytest.mark.parametrize(
    "headers",
    [
        {"Bad Name": "x"},
        {"": "x"},
        {"X-Ok": "line\r\nInjected: yes"},
        {"Authorization\n": "Bearer s3cret"},
        {"X-Ok": "value\n"},
        {"X-Ok": "a" * 8193},
        {"Idempotency-Key": "mine"},
        {"x-task-id": "forged"},
        {"Host": "elsewhere"},
    ],
)
def test_invalid_or_engine_owned_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as error:
        HttpTarget(url=URL, headers=headers)

    assert ("headers",) in error_locs(error)


def test_ordinary_headers_are_accepted() -> None:
    target = HttpTarget(url=URL, headers={"Content-Type": "application/json", "X-Trace": "1"})

    assert target.headers["X-Trace"] == "1"


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "authorization",
        "Proxy-Authorization",
        "X-Api-Key",
        "X-API_KEY",
        "apikey",
        "Cookie",
        "X-Auth-Token",
        "X-Client-Secret",
        "X-Hub-Signature",
        "X-Pwd",
        "X-Pass",
        "Sessionid",
    ],
)
def test_secret_headers_are_recognised(name: str) -> None:
    assert is_secret_header(name)


@pytest.mark.parametrize(
    "name", ["Content-Type", "Accept", "X-Request-Id", "User-Agent", "X-Passenger", "X-Side"]
)
def test_ordinary_headers_are_not_secret(name: str) -> None:
    assert not is_secret_header(name)


def test_retry_min_backoff_above_max_backoff_is_refused_naming_min_backoff() -> None:
    # Given overrides whose minimum backoff exceeds their maximum
    request = submit(retry={"min_backoff_seconds": 10, "max_backoff_seconds": 5})

    # When the policy is resolved, then the error names retry.min_backoff_seconds
    with pytest.raises(InvalidRequestError) as error:
        resolve_retry_policy(request, RetryDefaults())
    assert error.value.field == "retry.min_backoff_seconds"


@pytest.mark.parametrize(
    "fields",
    [
        {"max_attempts": 0},
        {"min_backoff_seconds": -1},
        {"max_retry_duration_seconds": 0},
        {"jitter": "sometimes"},
    ],
)
def test_retry_overrides_out_of_range_are_invalid(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicyInput.model_validate(fields)


@pytest.mark.parametrize(
    "name", ["bad name!", "arn:aws:s3:::bucket", "x" * 65, "billing-sync\n", "billing-sync:live\n"]
)
def test_lambda_function_names_are_checked(name: str) -> None:
    with pytest.raises(ValidationError):
        LambdaTarget(function_name=name)


@pytest.mark.parametrize(
    "name",
    [
        "billing-sync",
        "billing-sync:live",
        "arn:aws:lambda:eu-west-1:123456789012:function:billing-sync",
    ],
)
def test_lambda_function_names_and_arns_are_accepted(name: str) -> None:
    assert LambdaTarget(function_name=name).function_name == name


def test_an_unknown_target_type_is_invalid() -> None:
    with pytest.raises(ValidationError) as error:
        submit(target={"type": "carrier-pigeon", "url": URL})

    assert error.value.errors()[0]["type"] == "union_tag_invalid"


@pytest.mark.parametrize("timeout", ["inf", "-Infinity", "nan", 1e400])
def test_a_non_finite_http_timeout_is_invalid(timeout: Any) -> None:
    with pytest.raises(ValidationError) as error:
        HttpTarget.model_validate({"url": URL, "timeout_seconds": timeout})

    assert ("timeout_seconds",) in error_locs(error)
