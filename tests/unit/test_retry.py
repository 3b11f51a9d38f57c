"""The retry policy: pure functions of attempt, policy, random source and clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskengine.models import JitterMode, RetryPolicy
from taskengine.retry import (
    RandomSource,
    backoff_seconds,
    next_attempt_time,
    parse_retry_after,
    retry_delay_seconds,
)

NOW = datetime(2026, 12, 3, 18, 0, 0, tzinfo=UTC)

attempts = st.integers(min_value=1, max_value=10**12)
unit_floats = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
backoffs = st.floats(min_value=0.0, max_value=86_400.0, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn, jitter: JitterMode | None = None) -> RetryPolicy:
    low = draw(backoffs)
    high = draw(st.floats(min_value=low, max_value=86_400.0 * 10, allow_nan=False))
    return RetryPolicy(
        max_attempts=draw(st.integers(min_value=1, max_value=1000)),
        min_backoff_seconds=low,
        max_backoff_seconds=high,
        max_doublings=draw(st.integers(min_value=0, max_value=1000)),
        jitter=jitter if jitter is not None else draw(st.sampled_from(list(JitterMode))),
        max_retry_duration_seconds=draw(st.floats(min_value=0.001, max_value=10**8)),
    )


def policy(**overrides: object) -> RetryPolicy:
    values: dict[str, object] = {
        "max_attempts": 5,
        "min_backoff_seconds": 1.0,
        "max_backoff_seconds": 300.0,
        "max_doublings": 16,
        "jitter": JitterMode.NONE,
        "max_retry_duration_seconds": 86_400.0,
    }
    values.update(overrides)
    return RetryPolicy.model_validate(values)


def constant(value: float) -> RandomSource:
    return lambda: value


def without_jitter(retry: RetryPolicy) -> RetryPolicy:
    return retry.model_copy(update={"jitter": JitterMode.NONE})


def unexpected_rand() -> float:
    raise AssertionError("jitter none must not draw a random number")


# -- backoff_seconds -------------------------------------------------------------------------


@given(attempt=attempts, retry=policies(), draw=unit_floats)
def test_backoff_is_never_negative_nor_above_the_cap(
    attempt: int, retry: RetryPolicy, draw: float
) -> None:
    delay = backoff_seconds(attempt, retry, constant(draw))

    assert 0.0 <= delay <= retry.max_backoff_seconds


@pytest.mark.parametrize("attempt", [5000, 10**9, 10**18])
def test_huge_attempt_numbers_give_the_cap_without_overflow(attempt: int) -> None:
    retry = policy(min_backoff_seconds=0.5, max_backoff_seconds=300.0, max_doublings=1000)

    assert backoff_seconds(attempt, retry, unexpected_rand) == 300.0


@given(attempt=attempts, retry=policies(jitter=JitterMode.NONE))
def test_backoff_without_jitter_never_decreases_with_the_attempt(
    attempt: int, retry: RetryPolicy
) -> None:
    assert backoff_seconds(attempt, retry, unexpected_rand) <= backoff_seconds(
        attempt + 1, retry, unexpected_rand
    )


def test_backoff_without_jitter_doubles_from_the_minimum() -> None:
    retry = policy(min_backoff_seconds=1.0, max_backoff_seconds=300.0)

    delays = [backoff_seconds(n, retry, unexpected_rand) for n in range(1, 11)]

    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_backoff_stops_doubling_after_max_doublings() -> None:
    retry = policy(min_backoff_seconds=1.0, max_backoff_seconds=300.0, max_doublings=3)

    assert [backoff_seconds(n, retry, unexpected_rand) for n in (4, 5, 50)] == [8, 8, 8]


@given(attempt=attempts, retry=policies(jitter=JitterMode.FULL), draw=unit_floats)
def test_full_jitter_stays_between_zero_and_the_unjittered_delay(
    attempt: int, retry: RetryPolicy, draw: float
) -> None:
    base = backoff_seconds(attempt, without_jitter(retry), unexpected_rand)

    assert 0.0 <= backoff_seconds(attempt, retry, constant(draw)) <= base


@given(attempt=attempts, retry=policies(jitter=JitterMode.EQUAL), draw=unit_floats)
def test_equal_jitter_stays_between_half_and_all_of_the_unjittered_delay(
    attempt: int, retry: RetryPolicy, draw: float
) -> None:
    base = backoff_seconds(attempt, without_jitter(retry), unexpected_rand)

    assert base / 2 <= backoff_seconds(attempt, retry, constant(draw)) <= base


def test_zero_minimum_backoff_means_no_wait() -> None:
    retry = policy(min_backoff_seconds=0.0, max_backoff_seconds=0.0)

    assert backoff_seconds(10**9, retry, unexpected_rand) == 0.0


# -- retry_delay_seconds ---------------------------------------------------------------------


def test_retry_after_longer_than_the_backoff_is_honoured() -> None:
    retry = policy(min_backoff_seconds=1.0, max_backoff_seconds=300.0)

    assert retry_delay_seconds(1, retry, unexpected_rand, retry_after_seconds=120.0) == 120.0


def test_retry_after_is_capped_by_max_backoff() -> None:
    retry = policy(min_backoff_seconds=1.0, max_backoff_seconds=60.0)

    assert retry_delay_seconds(1, retry, unexpected_rand, retry_after_seconds=3600.0) == 60.0


def test_retry_after_shorter_than_the_backoff_is_ignored() -> None:
    retry = policy(min_backoff_seconds=10.0, max_backoff_seconds=300.0)

    assert retry_delay_seconds(3, retry, unexpected_rand, retry_after_seconds=5.0) == 40.0


@given(
    attempt=attempts,
    retry=policies(),
    draw=unit_floats,
    retry_after=st.none() | st.floats(min_value=0, max_value=10**9),
)
def test_retry_delay_stays_within_zero_and_the_cap(
    attempt: int, retry: RetryPolicy, draw: float, retry_after: float | None
) -> None:
    delay = retry_delay_seconds(attempt, retry, constant(draw), retry_after)

    assert 0.0 <= delay <= retry.max_backoff_seconds


# -- next_attempt_time -----------------------------------------------------------------------


def test_no_retry_once_max_attempts_have_run() -> None:
    retry = policy(max_attempts=3)

    when = next_attempt_time(
        attempt=3, policy=retry, first_attempt_at=NOW, now=NOW, rand=unexpected_rand
    )

    assert when is None


def test_next_attempt_is_now_plus_the_backoff() -> None:
    retry = policy(max_attempts=3, min_backoff_seconds=2.0)

    when = next_attempt_time(
        attempt=2, policy=retry, first_attempt_at=NOW, now=NOW, rand=unexpected_rand
    )

    assert when == NOW + timedelta(seconds=4)


def test_no_retry_that_would_start_past_the_retry_duration() -> None:
    retry = policy(min_backoff_seconds=100.0, max_retry_duration_seconds=150.0)
    later = NOW + timedelta(seconds=60)

    when = next_attempt_time(
        attempt=1, policy=retry, first_attempt_at=NOW, now=later, rand=unexpected_rand
    )

    assert when is None


@given(
    attempt=st.integers(min_value=1, max_value=10**9),
    retry=policies(),
    draw=unit_floats,
    elapsed=st.floats(min_value=0, max_value=10**7),
    retry_after=st.none() | st.floats(min_value=0, max_value=10**9),
)
def test_next_attempt_is_never_past_max_attempts_nor_the_retry_duration(
    attempt: int, retry: RetryPolicy, draw: float, elapsed: float, retry_after: float | None
) -> None:
    now = NOW + timedelta(seconds=elapsed)

    when = next_attempt_time(
        attempt=attempt,
        policy=retry,
        first_attempt_at=NOW,
        now=now,
        rand=constant(draw),
        retry_after_seconds=retry_after,
    )

    if attempt >= retry.max_attempts:
        assert when is None
    if when is not None:
        assert now <= when <= NOW + timedelta(seconds=retry.max_retry_duration_seconds)
        assert when - now <= timedelta(seconds=retry.max_backoff_seconds)


# -- parse_retry_after -----------------------------------------------------------------------


def test_retry_after_in_whole_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120.0


def test_retry_after_as_a_future_http_date() -> None:
    value = format_datetime(NOW + timedelta(seconds=90), usegmt=True)

    assert parse_retry_after(value, NOW) == 90.0


def test_a_retry_after_of_any_length_waits_the_longest_backoff() -> None:
    # Given a downstream asking for more seconds than any policy allows
    seconds = parse_retry_after("9" * 400, NOW)

    # Then it reads as a (very) long wait, which max_backoff caps
    assert seconds is not None
    assert seconds >= 10**12
    retry = policy(min_backoff_seconds=1, max_backoff_seconds=60, jitter=JitterMode.NONE)
    assert retry_delay_seconds(1, retry, unexpected_rand, retry_after_seconds=seconds) == 60.0


@pytest.mark.parametrize(
    "value",
    [
        format_datetime(NOW - timedelta(seconds=90), usegmt=True),
        format_datetime(NOW, usegmt=True),
        "-3",
        "1.5",
        "soon",
        "",
        "   ",
        None,
        "Mon, 99 Foo 2026 99:99:99 GMT",
        "\u0663",
    ],
)
def test_past_or_malformed_retry_after_is_ignored(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@given(text=st.text(max_size=64))
def test_parsing_any_retry_after_text_never_raises_nor_goes_negative(text: str) -> None:
    seconds = parse_retry_after(text, NOW)

    assert seconds is None or seconds >= 0
