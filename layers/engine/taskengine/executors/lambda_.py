"""The Lambda executor: one synchronous invocation per attempt, behind a small invoker seam."""

from __future__ import annotations

import importlib
import json
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from taskengine.executors import AttemptContext, ExecutionResult, short_error
from taskengine.models import AttemptOutcome, HttpTarget, LambdaTarget

if TYPE_CHECKING:
    from types_boto3_lambda import LambdaClient

# Lambda error codes worth another attempt: throttles, service faults, and a function or its
# network interfaces not ready yet. Codes in neither set are judged by their HTTP status.
RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "ServiceException",
        "ServiceUnavailableException",
        "InternalFailure",
        "ResourceNotReadyException",
        "ResourceConflictException",
        "ENILimitReachedException",
        "SubnetIPAddressLimitReachedException",
        "ExpiredTokenException",
        "SnapStartNotReadyException",
        "SnapStartTimeoutException",
        "EFSIOException",
        "EFSMountConnectivityException",
        "EFSMountTimeoutException",
    }
)
PERMANENT_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "InvalidRequestContentException",
        "RequestTooLargeException",
        "AccessDeniedException",
        "AccessDenied",
        "InvalidParameterValueException",
        "UnsupportedMediaTypeException",
        "InvalidRuntimeException",
        "InvalidZipFileException",
        "UnrecognizedClientException",
    }
)
MAX_CACHED_CLIENTS = 16


@dataclass(frozen=True)
class InvokeResult:
    """What a synchronous invocation returned. function_error is set when the function failed."""

    status_code: int
    function_error: str | None
    payload: bytes


class InvokeError(Exception):
    """The invocation itself failed: the function did not run, or its answer never came."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        status_code: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after_seconds = retry_after_seconds


class InvokeTimeoutError(InvokeError):
    def __init__(self, timeout_seconds: float) -> None:
        super().__init__("Timeout", f"timeout after {timeout_seconds:g}s", retryable=True)


class LambdaInvoker(Protocol):
    def invoke(self, function_name: str, payload: bytes, timeout_seconds: float) -> InvokeResult:
        """Invoke synchronously; raise InvokeError when the invocation itself fails."""
        ...


def _is_retryable(code: str, status_code: int | None) -> bool:
    if code in RETRYABLE_CODES or code.startswith("EC2"):
        return True
    if code in PERMANENT_CODES:
        return False
    return status_code is None or status_code == 429 or status_code >= 500


def read_timeout_bucket(timeout_seconds: float) -> float:
    """The read timeout of the client serving this attempt: never above the attempt's budget.

    Whole seconds (tenths below one second) keep the number of distinct clients small.
    """
    if timeout_seconds >= 1:
        return float(math.floor(timeout_seconds))
    return max(0.1, math.floor(timeout_seconds * 10) / 10)


class Boto3LambdaInvoker:
    """Invokes functions through boto3, RequestResponse, with botocore's own retries off.

    botocore fixes the read timeout per client, so clients are cached per timeout bucket
    (least recently used first out). The engine does the retrying: an SDK retry after a
    read timeout would run the function twice.
    """

    def __init__(
        self,
        *,
        session: boto3.Session | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self._session = session or boto3.Session()
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self._clients: OrderedDict[float, LambdaClient] = OrderedDict()
        self._lock = threading.Lock()

    def _client(self, timeout_seconds: float) -> LambdaClient:
        bucket = read_timeout_bucket(timeout_seconds)
        with self._lock:
            client = self._clients.get(bucket)
            if client is None:
                config = Config(
                    connect_timeout=min(bucket, 5.0),
                    read_timeout=bucket,
                    retries={"max_attempts": 0, "mode": "standard"},
                    tcp_keepalive=True,
                )
                client = self._session.client(
                    "lambda",
                    region_name=self._region_name,
                    endpoint_url=self._endpoint_url,
                    config=config,
                )
                self._clients[bucket] = client
                if len(self._clients) > MAX_CACHED_CLIENTS:
                    self._clients.popitem(last=False)
            self._clients.move_to_end(bucket)
            return client

    def invoke(self, function_name: str, payload: bytes, timeout_seconds: float) -> InvokeResult:
        client = self._client(timeout_seconds)
        try:
            response = client.invoke(
                FunctionName=function_name, InvocationType="RequestResponse", Payload=payload
            )
            body = response["Payload"].read()
        except ClientError as exc:
            raise invoke_error_from(exc) from exc
        except (ReadTimeoutError, ConnectTimeoutError) as exc:
            raise InvokeTimeoutError(timeout_seconds) from exc
        except BotoCoreError as exc:
            raise InvokeError(type(exc).__name__, str(exc), retryable=True) from exc
        return InvokeResult(
            status_code=response["StatusCode"],
            function_error=response.get("FunctionError"),
            payload=body,
        )


def invoke_error_from(exc: ClientError) -> InvokeError:
    error = exc.response.get("Error", {})
    metadata = exc.response.get("ResponseMetadata", {})
    code = error.get("Code", "Unknown")
    status_code = metadata.get("HTTPStatusCode")
    retry_after = metadata.get("HTTPHeaders", {}).get("retry-after")
    return InvokeError(
        code,
        error.get("Message", ""),
        retryable=_is_retryable(code, status_code),
        status_code=status_code,
        retry_after_seconds=float(retry_after) if retry_after and retry_after.isdigit() else None,
    )


@dataclass(frozen=True)
class LocalLambdaContext:
    """The fields of a Lambda context object that handlers and Powertools read."""

    function_name: str
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    log_group_name: str = ""
    log_stream_name: str = ""

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _bare_function_name(function_name: str) -> str:
    """billing-sync from billing-sync, billing-sync:live or its full ARN."""
    if function_name.startswith("arn:"):
        function_name = function_name.split(":function:", 1)[1]
    return function_name.split(":", 1)[0]


def _function_error(error_type: str, message: str) -> InvokeResult:
    payload = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return InvokeResult(status_code=200, function_error="Unhandled", payload=payload)


class PythonFunctionInvoker:
    """Runs local Python callables in place of Lambda functions, for the local stack.

    Each name maps to "package.module:attr", imported on first use. Results and errors are
    shaped as Lambda shapes them. The callable runs in a thread of its own so that the
    attempt's timeout holds; a callable that overruns is left to finish in the background,
    as Lambda cannot stop one either, from the caller's point of view.
    """

    def __init__(self, functions: Mapping[str, str]) -> None:
        for name, reference in functions.items():
            if ":" not in reference:
                raise ValueError(f"function {name!r}: expected module:attr, got {reference!r}")
        self._references = dict(functions)

    @classmethod
    def from_env_value(cls, value: str) -> PythonFunctionInvoker:
        """Parse "name=module:attr,name2=module:attr2" (as in TASKENGINE_LOCAL_FUNCTIONS)."""
        functions: dict[str, str] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, reference = item.partition("=")
            if not sep or not name.strip() or not reference.strip():
                raise ValueError(f"expected name=module:attr, got {item.strip()!r}")
            functions[name.strip()] = reference.strip()
        return cls(functions)

    def invoke(self, function_name: str, payload: bytes, timeout_seconds: float) -> InvokeResult:
        name = _bare_function_name(function_name)
        reference = self._references.get(name)
        if reference is None:
            raise InvokeError(
                "ResourceNotFoundException",
                f"Function not found: {function_name}",
                retryable=False,
                status_code=404,
            )
        try:
            handler = _load(reference)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            return _function_error(
                "Runtime.ImportModuleError", f"Unable to import {reference}: {exc}"
            )

        context = LocalLambdaContext(
            function_name=name,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + timeout_seconds,
        )
        outcome: list[InvokeResult] = []
        runner = threading.Thread(
            target=lambda: outcome.append(_call(handler, payload, context)),
            name=f"local-function-{name}",
            daemon=True,
        )
        runner.start()
        runner.join(timeout_seconds)
        if not outcome:
            raise InvokeTimeoutError(timeout_seconds)
        return outcome[0]


def _load(reference: str) -> Callable[[Any, Any], Any]:
    module_name, _, attr = reference.partition(":")
    handler = getattr(importlib.import_module(module_name), attr)
    if not callable(handler):
        raise TypeError(f"{reference} is not callable")
    return handler  # type: ignore[no-any-return]


def _call(
    handler: Callable[[Any, Any], Any], payload: bytes, context: LocalLambdaContext
) -> InvokeResult:
    try:
        event = json.loads(payload) if payload else {}
        result = handler(event, context)
    except Exception as exc:  # noqa: BLE001 - a function's failure is its result, as in Lambda
        return _function_error(type(exc).__name__, str(exc))
    try:
        body = json.dumps(result).encode()
    except (TypeError, ValueError) as exc:
        return _function_error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
    return InvokeResult(status_code=200, function_error=None, payload=body)


class LambdaExecutor:
    """Runs LambdaTarget attempts through an invoker (boto3 when deployed, Python locally).

    The function receives the engine's envelope, so it can deduplicate on idempotency_key:
    {"task_id", "generation", "attempt", "idempotency_key", "payload"}.
    """

    def __init__(self, invoker: LambdaInvoker) -> None:
        self._invoker = invoker

    def execute(
        self,
        target: HttpTarget | LambdaTarget,
        secret_headers: dict[str, str],
        context: AttemptContext,
    ) -> ExecutionResult:
        if not isinstance(target, LambdaTarget):
            raise TypeError(f"LambdaExecutor cannot run a {target.type} target")
        started = time.monotonic()
        outcome, status_code, error, retry_after = self._attempt(target, context)
        return ExecutionResult(
            outcome=outcome,
            duration_ms=int((time.monotonic() - started) * 1000),
            status_code=status_code,
            error=short_error(error) if error is not None else None,
            retry_after_seconds=retry_after,
        )

    def _attempt(
        self, target: LambdaTarget, context: AttemptContext
    ) -> tuple[AttemptOutcome, int | None, str | None, float | None]:
        envelope = {
            "task_id": context.task_id,
            "generation": context.generation,
            "attempt": context.attempt,
            "idempotency_key": context.idempotency_key,
            "payload": target.payload,
        }
        try:
            payload = json.dumps(envelope, allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError):
            return AttemptOutcome.PERMANENT_FAILURE, None, "payload is not valid JSON", None

        try:
            result = self._invoker.invoke(target.function_name, payload, context.timeout_seconds)
        except InvokeError as exc:
            outcome = (
                AttemptOutcome.RETRYABLE_FAILURE
                if exc.retryable
                else AttemptOutcome.PERMANENT_FAILURE
            )
            return outcome, exc.status_code, str(exc), exc.retry_after_seconds

        if result.function_error is not None:
            error = f"function error: {_describe_function_error(result)}"
            return AttemptOutcome.RETRYABLE_FAILURE, result.status_code, error, None
        if 200 <= result.status_code < 300:
            return AttemptOutcome.SUCCEEDED, result.status_code, None, None
        retryable = result.status_code == 429 or result.status_code >= 500
        outcome = (
            AttemptOutcome.RETRYABLE_FAILURE if retryable else AttemptOutcome.PERMANENT_FAILURE
        )
        return outcome, result.status_code, f"invoke returned status {result.status_code}", None


def _describe_function_error(result: InvokeResult) -> str:
    """ "errorType: errorMessage" from Lambda's error payload, else the raw payload's start."""
    try:
        body = json.loads(result.payload)
    except ValueError:
        body = None
    if isinstance(body, dict) and ("errorType" in body or "errorMessage" in body):
        return f"{body.get('errorType', result.function_error)}: {body.get('errorMessage', '')}"
    text = result.payload[:200].decode("utf-8", errors="replace")
    return f"{result.function_error}: {text}" if text else str(result.function_error)
