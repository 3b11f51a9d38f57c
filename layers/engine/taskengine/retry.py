"""Retry policy: pure functions of (attempt, policy, random source, clock)."""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from taskengine.models import JitterMode, RetryPolicy

RandomSource = Callable[[], float]
"""Returns a float in [0, 1), like random.random."""

# Any length: an absurdly long wait is still a wait, and max_backoff caps it.
_DELTA_SECONDS = re.compile(r"^\s*([0-9]+)\s*$")
_LONGEST_RETRY_AFTER_SECONDS = 1e12


def _exponential_seconds(min_backoff: float, exponent: int, cap: float) -> float:
    if min_backoff <= 0 or cap <= 0:
        return 0.0
    # Comparing exponents first keeps 2 ** exponent from ever being computed past the cap,
    # so attempt 10**9 costs the same as attempt 2 and cannot overflow.
    if exponent >= math.log2(cap / min_backoff):
        return cap
    return min(cap, math.ldexp(min_backoff, exponent))


def backoff_seconds(attempt: int, policy: RetryPolicy, rand: RandomSource) -> float:
    """Delay before the retry that follows failed attempt number `attempt` (1-based).

    min(max_backoff, min_backoff * 2 ** min(attempt - 1, max_doublings)), then jitter.
    Never negative, never above max_backoff, finite for any attempt number.
    """
    exponent = max(0, min(attempt - 1, policy.max_doublings))
    cap = policy.max_backoff_seconds
    base = _exponential_seconds(policy.min_backoff_seconds, exponent, cap)

    if policy.jitter is JitterMode.FULL:
        delay = base * rand()
    elif policy.jitter is JitterMode.EQUAL:
        delay = base / 2 + (base / 2) * rand()
    else:
        delay = base

    return min(cap, max(0.0, delay))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header, or None when absent, past or malformed.

    RFC 9110 allows a non-negative integer of seconds or an HTTP-date; anything else
    (negative numbers, fractions, words) is ignored so that the normal backoff applies.
    """
    if not value:
        return None

    match = _DELTA_SECONDS.match(value)
    if match:
        digits = match.group(1).lstrip("0") or "0"
        # Past twelve digits (some 30,000 years) every wait is the policy's longest anyway.
        return float(digits) if len(digits) <= 12 else _LONGEST_RETRY_AFTER_SECONDS

    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return seconds if seconds > 0 else None


def retry_delay_seconds(
    attempt: int,
    policy: RetryPolicy,
    rand: RandomSource,
    retry_after_seconds: float | None = None,
) -> float:
    """The backoff, raised to a server's Retry-After when that is longer, capped by max_backoff."""
    delay = backoff_seconds(attempt, policy, rand)
    if retry_after_seconds is not None and retry_after_seconds > delay:
        delay = min(policy.max_backoff_seconds, retry_after_seconds)
    return delay


def next_attempt_time(
    *,
    attempt: int,
    policy: RetryPolicy,
    first_attempt_at: datetime,
    now: datetime,
    rand: RandomSource,
    retry_after_seconds: float | None = None,
) -> datetime | None:
    """When to run the attempt after failed attempt `attempt`, or None when retries are spent.

    Retries end when max_attempts attempts have run or when the next attempt would start past
    first_attempt_at + max_retry_duration.
    """
    if attempt >= policy.max_attempts:
        return None

    delay = retry_delay_seconds(attempt, policy, rand, retry_after_seconds)
    when = now + timedelta(seconds=delay)
    deadline = first_attempt_at + timedelta(seconds=policy.max_retry_duration_seconds)
    if when > deadline:
        return None
    return when
