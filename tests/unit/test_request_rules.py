"""Input the API must refuse up front: values that could be stored but never sent correctly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from taskengine.models import HttpTarget, LambdaTarget, is_secret_header
from taskengine.sealing import split_secrets

URL = "https://svc.internal/hook"


def invalid(**fields: Any) -> str:
    """The first error location of an HttpTarget built from these fields."""
    with pytest.raises(ValidationError) as error:
        HttpTarget.model_validate({"url": URL, **fields})
    return ".".join(str(part) for part in error.value.errors()[0]["loc"])


@pytest.mark.parametrize(
    "name", ["X-Auth-Key", "Authentication", "X-Session", "Private-Key", "X-Access-Key", "Cookie"]
)
def test_headers_that_may_carry_credentials_are_secret(name: str) -> None:
    assert is_secret_header(name)


@pytest.mark.parametrize("name", ["Content-Type", "Accept", "X-Request-Id", "Keep-Alive"])
def test_ordinary_headers_are_not_secret(name: str) -> None:
    assert not is_secret_header(name)


@pytest.mark.parametrize(
    "url",
    [
        "http://svc:99999/",
        "http://svc:-1/",
        "http://svc:abc/",
        "http://exa mple.com/",
        "http://svc/\r\nX-Injected: 1",
        "http://user:pass@svc/hook",
    ],
)
def test_urls_that_cannot_be_called_as_given_are_refused(url: str) -> None:
    assert invalid(url=url) == "url"


@pytest.mark.parametrize("value", ["é一", "a\u0000b", "x" * 8193])
def test_header_values_must_be_printable_ascii(value: str) -> None:
    assert invalid(headers={"X-A": value}) == "headers"


def test_a_header_given_twice_in_different_case_is_refused() -> None:
    assert invalid(headers={"Authorization": "a", "authorization": "b"}) == "headers"


def test_a_lone_surrogate_in_a_body_is_refused() -> None:
    # Given JSON text that decodes to an unpaired surrogate
    body = json.loads('{"text": "\\ud800"}')

    # Then neither an HTTP body nor a Lambda payload accepts it
    assert invalid(body=body) == "body"
    with pytest.raises(ValidationError):
        LambdaTarget(function_name="echo", payload=body)


def test_a_timeout_too_small_to_mean_anything_is_refused() -> None:
    assert invalid(timeout_seconds=1e-300) == "timeout_seconds"


def test_secret_query_parameters_are_sealed_and_redacted_in_the_stored_target() -> None:
    # Given a URL with an API key in its query
    target = HttpTarget(url="https://svc.internal/hook?api_key=S3CRET&page=2")

    # When its secrets are split off
    shown, sealed = split_secrets(target)

    # Then the stored URL shows the parameter redacted, and the real one is sealed
    assert "S3CRET" not in shown.url
    assert "page=2" in shown.url
    assert sealed is not None
    assert sealed.apply(shown).url == target.url


def test_a_target_without_secrets_seals_nothing() -> None:
    target = HttpTarget(url=URL, headers={"Content-Type": "application/json"})

    assert split_secrets(target) == (target, None)


@pytest.mark.parametrize("name", ["X-Author", "keyword", "monkeys", "X-Sessionless-Mode"])
def test_names_that_only_contain_a_secret_word_are_not_secret(name: str) -> None:
    assert not is_secret_header(name)


def test_a_secret_after_a_semicolon_separator_is_redacted_and_the_rest_kept_verbatim() -> None:
    target = HttpTarget(url="https://svc.internal/hook?q=%2F;token=S3CRET&a=b+c")

    shown, sealed = split_secrets(target)

    assert shown.url == "https://svc.internal/hook?q=%2F;token=[redacted]&a=b+c"
    assert sealed is not None
    assert sealed.url == target.url
