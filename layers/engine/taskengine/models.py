"""Pydantic models at every boundary: API requests and responses, stored records, messages."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

# Name segments that mark a credential. A header or query parameter name is split on "-", "_"
# and "."; it is secret when a segment is one of these or ends in one of the suffixes, so
# X-Auth-Key, Authorization, X-Session, Private-Key, api_key and accessToken are sealed while
# X-Author and keyword are not.
_SECRET_SEGMENTS = frozenset(
    {
        "auth", "authorization", "authentication", "bearer", "cookie", "credential",
        "credentials", "jwt", "key", "pass", "passwd", "password", "private", "pwd", "secret",
        "session", "sessionid", "sid", "sig", "signature", "token",
    }
)  # fmt: skip
_SECRET_SUFFIXES = ("key", "token", "secret", "password", "signature")
_NAME_SEGMENTS = re.compile(r"[-_.]")
REDACTED = "[redacted]"
# RFC 3339 date-time with its offset (section 5.6). A leap second (:60) passes this check and
# is then refused by datetime, which cannot hold it.
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
# Header values go on the wire as ASCII: visible characters, spaces and tabs only.
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]{0,8192}$")
_RESERVED_HEADERS = frozenset(
    {"x-task-id", "x-task-attempt", "idempotency-key", "host", "content-length"}
)
_FUNCTION_NAME = re.compile(
    r"^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}(:[\w$-]+)?$"
)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision, e.g. 2026-12-03T18:37:14.123Z."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


UtcTime = Annotated[
    datetime,
    PlainSerializer(format_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def is_secret_header(name: str) -> bool:
    """Whether a header (or query parameter) name suggests its value is a credential."""
    segments = [part for part in _NAME_SEGMENTS.split(name.lower()) if part]
    return any(part in _SECRET_SEGMENTS or part.endswith(_SECRET_SUFFIXES) for part in segments)


def _first_bad(value: Any, is_bad: Callable[[Any], bool], path: str) -> str | None:
    """The JSON path of the first value or key in `value` that `is_bad` flags, or None."""
    if is_bad(value):
        return path or "$"
    if isinstance(value, dict):
        for key, item in value.items():
            if is_bad(key):
                return path or "$"
            found = _first_bad(item, is_bad, f"{path}.{key}" if path else str(key))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _first_bad(item, is_bad, f"{path}[{index}]")
            if found:
                return found
    return None


def find_non_finite(value: Any, path: str = "") -> str | None:
    """Return the JSON path of the first NaN or Infinity in a JSON value, or None."""
    return _first_bad(value, lambda item: isinstance(item, float) and not math.isfinite(item), path)


def find_unencodable(value: Any, path: str = "") -> str | None:
    """Return the JSON path of the first string (or key) that UTF-8 cannot encode, or None.

    JSON allows escapes such as \\ud800 that decode to lone surrogates: valid JSON text, but
    no UTF-8 byte sequence, so such a value could be stored but never sent.
    """
    return _first_bad(value, lambda item: isinstance(item, str) and not _encodable(item), path)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _reject_non_finite(value: Any) -> Any:
    bad = find_non_finite(value)
    if bad is not None:
        raise ValueError(f"NaN and Infinity are not valid JSON numbers (at {bad})")
    bad = find_unencodable(value)
    if bad is not None:
        raise ValueError(f"strings must be valid Unicode (a lone surrogate at {bad})")
    return value


class JitterMode(StrEnum):
    NONE = "none"
    FULL = "full"
    EQUAL = "equal"


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    RETRY_SCHEDULED = "RETRY_SCHEDULED"
    COMPLETED = "COMPLETED"
    DEAD_LETTER = "DEAD_LETTER"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.DEAD_LETTER, TaskStatus.CANCELLED})


class AttemptOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    RETRYABLE_FAILURE = "retryable_failure"
    PERMANENT_FAILURE = "permanent_failure"
    LEASE_EXPIRED = "lease_expired"


# How far ahead a first run may be set: any distance a caller means, while every time the
# engine derives from it (due times, retry deadlines) stays far inside datetime's range.
MAX_START_DAYS = 100 * 365


def _not_text_or_flag(value: Any) -> Any:
    # bool is an int to Python, and lax pydantic reads "10" as 10; JSON's 3.0 stays whole.
    if isinstance(value, str | bool):
        # A ValueError, not a TypeError: pydantic turns only the former into a 422.
        raise ValueError("must be a JSON number, not a string or a boolean")  # noqa: TRY004
    return value


# A whole number as a caller writes it in JSON (3 or 3.0, never "3" nor true). Request floats
# and flags are `strict=True` fields instead: `"10"` is not a delay, and `"no"` is not `false`
# (a typo must not turn a dry run into a real one).
WholeNumber = Annotated[int, BeforeValidator(_not_text_or_flag)]


class _Strict(BaseModel):
    """Unknown fields are refused: a misspelt option must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpTarget(_Strict):
    type: Literal["http"] = "http"
    url: str = Field(max_length=2048, examples=["https://svc.internal/hook"])
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    body: Any = None
    timeout_seconds: float | None = Field(default=None, ge=0.1, allow_inf_nan=False, strict=True)

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in value):
            raise ValueError("must not contain spaces or control characters")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry credentials; send them in a header")
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when it is read
        except ValueError as error:
            raise ValueError("has an invalid port") from error
        return value

    @field_validator("headers")
    @classmethod
    def _headers_are_valid(cls, value: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name, header_value in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the engine")
            if name.lower() in seen:
                raise ValueError(f"header {name!r} is given twice (names are case-insensitive)")
            seen.add(name.lower())
            if not _HEADER_VALUE.fullmatch(header_value):
                raise ValueError(
                    f"the value of header {name!r} must be at most 8192 printable ASCII characters"
                )
        return value

    @field_validator("body")
    @classmethod
    def _body_is_finite(cls, value: Any) -> Any:
        return _reject_non_finite(value)


class LambdaTarget(_Strict):
    type: Literal["lambda"] = "lambda"
    function_name: str = Field(max_length=170, examples=["billing-sync"])
    payload: Any = None

    @field_validator("function_name")
    @classmethod
    def _function_name_is_valid(cls, value: str) -> str:
        if not _FUNCTION_NAME.fullmatch(value):
            raise ValueError("must be a Lambda function name, name:qualifier or function ARN")
        return value

    @field_validator("payload")
    @classmethod
    def _payload_is_finite(cls, value: Any) -> Any:
        return _reject_non_finite(value)


Target = Annotated[HttpTarget | LambdaTarget, Field(discriminator="type")]


class RetryPolicyInput(_Strict):
    """A task's retry overrides; unset fields take the server defaults."""

    max_attempts: WholeNumber | None = Field(default=None, ge=1)
    min_backoff_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False, strict=True)
    max_backoff_seconds: float | None = Field(default=None, ge=0, allow_inf_nan=False, strict=True)
    max_doublings: WholeNumber | None = Field(default=None, ge=0, le=1000)
    jitter: JitterMode | None = None
    max_retry_duration_seconds: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, strict=True
    )


class RetryPolicy(_Strict):
    """A fully resolved retry policy, as stored with the task."""

    max_attempts: int = Field(ge=1)
    min_backoff_seconds: float = Field(ge=0)
    max_backoff_seconds: float = Field(ge=0)
    max_doublings: int = Field(ge=0)
    jitter: JitterMode
    max_retry_duration_seconds: float = Field(gt=0)


class SubmitTaskRequest(_Strict):
    target: Target
    retry: RetryPolicyInput | None = None
    delay_seconds: WholeNumber | None = Field(default=None, ge=0, le=MAX_START_DAYS * 86_400)
    # Bounded in submission (at most MAX_START_DAYS ahead), where the server's clock is known.
    schedule_at: datetime | None = None

    @field_validator("schedule_at", mode="before")
    @classmethod
    def _schedule_at_is_rfc3339(cls, value: Any) -> Any:
        # pydantic alone would also take epoch numbers, spaces for "T" and missing seconds.
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value
        if value is not None and not (isinstance(value, str) and _RFC3339.fullmatch(value)):
            raise ValueError(
                "must be an RFC 3339 time with a zone offset, e.g. 2030-01-01T00:00:00Z"
            )
        return value


class ReplayRequest(_Strict):
    reason: str = Field(min_length=1, max_length=500)


class ActionRequest(_Strict):
    reason: str | None = Field(default=None, max_length=500)


class RedriveFilter(_Strict):
    reason_contains: str | None = Field(default=None, min_length=1, max_length=200)
    target_type: Literal["http", "lambda"] | None = None


class RedriveRequest(_Strict):
    limit: WholeNumber = Field(default=25, ge=1, le=100)
    dry_run: bool = Field(default=False, strict=True)
    reason: str = Field(default="dead-letter redrive", min_length=1, max_length=500)
    filter: RedriveFilter = Field(default_factory=RedriveFilter)


class RedriveSkip(BaseModel):
    task_id: str | None
    reason: str


class RedriveReport(BaseModel):
    dry_run: bool
    examined: int
    replayed: list[str]
    skipped: list[RedriveSkip]
    removed_stale: int


class AttemptRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    generation: int
    started_at: UtcTime
    finished_at: UtcTime | None
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None


class AdminAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["cancel", "retry", "replay"]
    actor: str
    at: UtcTime
    reason: str | None = None
    generation: int


class TaskState(BaseModel):
    """The small, frequently updated part of a task."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    tenant: str
    status: TaskStatus
    generation: int = 0
    attempt_count: int = 0
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None = None
    first_attempt_at: datetime | None = None
    lease_until: datetime | None = None
    lease_token: str | None = None
    running_since: datetime | None = None
    dispatch_count: int = 0
    last_error: str | None = None
    idempotency_key: str | None = None
    target_type: Literal["http", "lambda"]
    timeout_seconds: float
    version: int = 0


class TaskSpec(BaseModel):
    """The write-once part of a task: what to run and how to retry it."""

    model_config = ConfigDict(frozen=True)

    target: HttpTarget | LambdaTarget = Field(discriminator="type")
    retry: RetryPolicy
    sealed_headers: bytes | None = None


class TaskSummary(BaseModel):
    """A task's state, as listings return it."""

    task_id: str
    tenant: str
    status: TaskStatus
    attempt_count: int
    generation: int
    created_at: UtcTime
    updated_at: UtcTime
    next_attempt_at: UtcTime | None
    last_error: str | None


class TaskView(TaskSummary):
    """A task as the API returns it: its state, what it runs, and its history."""

    target: HttpTarget | LambdaTarget = Field(discriminator="type")
    retry: RetryPolicy
    idempotency_key: str | None
    attempts: list[AttemptRecord]
    actions: list[AdminAction] = Field(default_factory=list)


class TaskPage(BaseModel):
    items: list[TaskSummary]
    next_cursor: str | None


class StatsView(BaseModel):
    counts: dict[TaskStatus, int]
    queues: dict[str, dict[str, int]]


class HealthView(BaseModel):
    status: Literal["ok", "degraded", "down"]
    checks: dict[str, str]


class WorkMessage(BaseModel):
    """The body of a work-queue message: which execution of which task to attempt."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str = Field(min_length=1, max_length=64)
    generation: int = Field(ge=0)
    attempt: int = Field(ge=1)


class DeadLetterMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    task_id: str | None = None
    generation: int | None = None
    reason: str
    raw_body: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)
