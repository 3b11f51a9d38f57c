"""LambdaExecutor with local Python functions, boto3 against moto, and the error mapping."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from taskengine.executors import AttemptContext
from taskengine.executors.lambda_ import (
    Boto3LambdaInvoker,
    InvokeError,
    InvokeResult,
    LambdaExecutor,
    PythonFunctionInvoker,
    invoke_error_from,
    read_timeout_bucket,
)
from taskengine.models import AttemptOutcome, HttpTarget, LambdaTarget

REGION = "us-east-1"
TIMEOUT_SECONDS = 5.0
SHORT_TIMEOUT_SECONDS = 0.2

# Test functions, referenced by module:attr like any local function.

seen_events: dict[str, dict[str, Any]] = {}
seen_contexts: dict[str, Any] = {}
release_slow = threading.Event()


def record_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    seen_events[event["task_id"]] = event
    seen_contexts[event["task_id"]] = context
    return {"received": event["payload"]}


def raise_error(event: dict[str, Any], context: Any) -> None:
    raise ValueError("inventory service said no")


def return_unserialisable(event: dict[str, Any], context: Any) -> object:
    return {"when": datetime(2026, 12, 3, tzinfo=UTC)}


def wait_for_release(event: dict[str, Any], context: Any) -> str:
    release_slow.wait(5)
    return "late"


not_callable = 42

FUNCTIONS = {
    "record": f"{__name__}:record_event",
    "fails": f"{__name__}:raise_error",
    "unserialisable": f"{__name__}:return_unserialisable",
    "slow": f"{__name__}:wait_for_release",
    "missing-module": "taskengine_no_such_module:handler",
    "not-callable": f"{__name__}:not_callable",
}


class FailingInvoker:
    """An invoker whose invocation fails the way a given AWS error maps."""

    def __init__(self, error: InvokeError) -> None:
        self.error = error

    def invoke(self, function_name: str, payload: bytes, timeout_seconds: float) -> InvokeResult:
        raise self.error


@pytest.fixture(scope="module", autouse=True)
def _release_slow_functions() -> Iterator[None]:
    yield
    release_slow.set()


@pytest.fixture
def local_executor() -> LambdaExecutor:
    return LambdaExecutor(PythonFunctionInvoker(FUNCTIONS))


def _context(
    task_id: str = "task-1",
    generation: int = 0,
    attempt: int = 1,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> AttemptContext:
    return AttemptContext(task_id, generation, attempt, timeout_seconds)


def _target(function_name: str, payload: Any = None) -> LambdaTarget:
    return LambdaTarget(function_name=function_name, payload=payload)


# The envelope and success


def test_the_function_receives_the_engine_envelope_with_the_payload(
    local_executor: LambdaExecutor,
) -> None:
    # Given a task whose payload holds awkward floats
    payload = {"amount": 12.5, "tiny": 1e-7, "name": "café"}
    context = _context(task_id="01JENVELOPE", generation=1, attempt=2)

    # When its attempt runs
    local_executor.execute(_target("record", payload), {}, context)

    # Then the function saw the execution's names and the payload unchanged
    assert seen_events["01JENVELOPE"] == {
        "task_id": "01JENVELOPE",
        "generation": 1,
        "attempt": 2,
        "idempotency_key": context.idempotency_key,
        "payload": payload,
    }


def test_a_function_that_returns_is_a_success(local_executor: LambdaExecutor) -> None:
    # Given a function that returns normally
    target = _target("record", {"a": 1})

    # When the attempt runs
    result = local_executor.execute(target, {}, _context(task_id="01JSUCCESS"))

    # Then it succeeded with Lambda's 200
    assert result.outcome is AttemptOutcome.SUCCEEDED
    assert result.status_code == 200
    assert result.error is None


def test_the_function_gets_a_lambda_like_context(local_executor: LambdaExecutor) -> None:
    # Given a function that keeps its context
    # When an attempt with a five second timeout runs
    local_executor.execute(_target("record"), {}, _context(task_id="01JCONTEXT"))

    # Then the context names the function and the time left within that timeout
    context = seen_contexts["01JCONTEXT"]
    assert context.function_name == "record"
    assert context.aws_request_id
    assert context.invoked_function_arn.endswith(":function:record")
    assert 0 <= context.get_remaining_time_in_millis() <= TIMEOUT_SECONDS * 1000


@pytest.mark.parametrize(
    "function_name",
    ["record:live", "arn:aws:lambda:us-east-1:123456789012:function:record:7"],
)
def test_a_qualified_name_or_an_arn_runs_the_local_function_of_that_name(
    local_executor: LambdaExecutor, function_name: str
) -> None:
    # Given a target naming the function with a qualifier or by ARN
    target = _target(function_name)

    # When the attempt runs
    result = local_executor.execute(target, {}, _context())

    # Then the local function of the bare name ran
    assert result.outcome is AttemptOutcome.SUCCEEDED


# Function errors


def test_a_function_that_raises_is_a_retryable_function_error(
    local_executor: LambdaExecutor,
) -> None:
    # Given a function that raises
    target = _target("fails")

    # When the attempt runs
    result = local_executor.execute(target, {}, _context())

    # Then the failure is retryable and names the error type and message
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.error == "function error: ValueError: inventory service said no"


def test_a_raised_exception_is_shaped_as_lambda_shapes_it() -> None:
    # Given the local invoker and a function that raises
    invoker = PythonFunctionInvoker(FUNCTIONS)

    # When it is invoked
    result = invoker.invoke("fails", b"{}", TIMEOUT_SECONDS)

    # Then the result carries Lambda's Unhandled marker and error document
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload) == {
        "errorMessage": "inventory service said no",
        "errorType": "ValueError",
    }


def test_a_result_that_is_not_json_is_a_marshal_error(local_executor: LambdaExecutor) -> None:
    # Given a function returning a datetime, which JSON cannot hold
    target = _target("unserialisable")

    # When the attempt runs
    result = local_executor.execute(target, {}, _context())

    # Then it fails as Lambda's runtime reports it
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.error is not None
    assert result.error.startswith("function error: Runtime.MarshalError: Unable to marshal")


@pytest.mark.parametrize("function_name", ["missing-module", "not-callable"])
def test_a_function_that_cannot_be_loaded_is_an_import_error(
    local_executor: LambdaExecutor, function_name: str
) -> None:
    # Given a mapping to a module that does not exist or an attribute that is not callable
    target = _target(function_name)

    # When the attempt runs
    result = local_executor.execute(target, {}, _context())

    # Then it fails as a function error, as a broken deployment package does in Lambda
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.error is not None
    assert result.error.startswith("function error: Runtime.ImportModuleError")


def test_a_function_slower_than_the_timeout_is_a_retryable_timeout(
    local_executor: LambdaExecutor,
) -> None:
    # Given a function that does not finish within the attempt's timeout
    context = _context(timeout_seconds=SHORT_TIMEOUT_SECONDS)

    # When the attempt runs
    result = local_executor.execute(_target("slow"), {}, context)

    # Then it is a retryable timeout
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.error == f"Timeout: timeout after {SHORT_TIMEOUT_SECONDS:g}s"


def test_an_unknown_local_function_is_a_permanent_not_found(
    local_executor: LambdaExecutor,
) -> None:
    # Given a target naming no configured function
    target = _target("nobody-home")

    # When the attempt runs
    result = local_executor.execute(target, {}, _context())

    # Then it fails for good, as Lambda's ResourceNotFound does
    assert result.outcome is AttemptOutcome.PERMANENT_FAILURE
    assert result.status_code == 404
    assert result.error == "ResourceNotFoundException: Function not found: nobody-home"


# Invocation failures mapped from AWS errors


def test_a_throttled_invocation_is_retryable_with_the_wait_lambda_asked_for() -> None:
    # Given an invoker throttled by Lambda with a Retry-After of 3 s
    throttled = InvokeError(
        "TooManyRequestsException",
        "Rate exceeded",
        retryable=True,
        status_code=429,
        retry_after_seconds=3.0,
    )
    executor = LambdaExecutor(FailingInvoker(throttled))

    # When the attempt runs
    result = executor.execute(_target("billing-sync"), {}, _context())

    # Then it is retryable, keeps the status and passes the wait on
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.status_code == 429
    assert result.retry_after_seconds == 3.0
    assert result.error == "TooManyRequestsException: Rate exceeded"


def _aws_error(code: str, status: int, headers: dict[str, str] | None = None) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "from AWS"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return ClientError(response, "Invoke")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("TooManyRequestsException", 429),
        ("ServiceException", 500),
        ("EC2ThrottledException", 502),
        ("ENILimitReachedException", 502),
        ("ResourceNotReadyException", 502),
        ("ResourceConflictException", 409),
        ("SomethingNewAndTransient", 503),
    ],
)
def test_throttles_service_faults_and_unready_functions_are_retryable(
    code: str, status: int
) -> None:
    # Given an Invoke error from AWS that a later attempt may not meet
    error = _aws_error(code, status)

    # When it is mapped
    mapped = invoke_error_from(error)

    # Then it is retryable and keeps code and status
    assert mapped.retryable
    assert mapped.code == code
    assert mapped.status_code == status


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ResourceNotFoundException", 404),
        ("InvalidRequestContentException", 400),
        ("RequestTooLargeException", 413),
        ("AccessDeniedException", 403),
        ("SomethingNewAndInvalid", 400),
    ],
)
def test_missing_functions_bad_requests_and_denied_access_are_permanent(
    code: str, status: int
) -> None:
    # Given an Invoke error from AWS that every attempt would meet
    error = _aws_error(code, status)

    # When it is mapped
    mapped = invoke_error_from(error)

    # Then it is permanent
    assert not mapped.retryable


def test_a_retry_after_header_on_a_throttle_is_kept() -> None:
    # Given a throttle whose response carries Retry-After
    error = _aws_error("TooManyRequestsException", 429, {"retry-after": "4"})

    # When it is mapped
    mapped = invoke_error_from(error)

    # Then the wait survives the mapping
    assert mapped.retry_after_seconds == 4.0


@pytest.mark.parametrize(
    ("timeout_seconds", "read_timeout"), [(30.0, 30.0), (29.7, 29.0), (0.35, 0.3), (0.04, 0.1)]
)
def test_the_read_timeout_of_the_boto3_client_stays_within_the_attempt_budget(
    timeout_seconds: float, read_timeout: float
) -> None:
    # Given an attempt's timeout
    # When the boto3 client for it is chosen
    bucket = read_timeout_bucket(timeout_seconds)

    # Then its read timeout does not exceed the budget (down to a floor of 0.1 s)
    assert bucket == read_timeout


# boto3 against moto


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.mark.usefixtures("aws")
def test_invoking_a_function_that_does_not_exist_is_a_permanent_failure() -> None:
    # Given a Lambda service where no function exists
    executor = LambdaExecutor(Boto3LambdaInvoker(region_name=REGION))

    # When an attempt invokes one
    result = executor.execute(_target("billing-sync"), {}, _context())

    # Then it fails for good with Lambda's 404
    assert result.outcome is AttemptOutcome.PERMANENT_FAILURE
    assert result.status_code == 404
    assert result.error is not None
    assert result.error.startswith("ResourceNotFoundException: Function not found")


@pytest.mark.usefixtures("aws")
def test_a_function_error_reported_by_the_service_is_retryable() -> None:
    # Given a deployed function; moto cannot run it without Docker and answers 200 with a
    # FunctionError, which is the shape of a function failing in AWS
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="billing-sync", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as package:
        package.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="billing-sync",
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    executor = LambdaExecutor(Boto3LambdaInvoker(region_name=REGION))

    # When an attempt invokes it
    result = executor.execute(_target("billing-sync", {"a": 1}), {}, _context())

    # Then the function error is retryable and recorded with the invoke status
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.status_code == 200
    assert result.error is not None
    assert result.error.startswith("function error: Handled")


# Local function configuration


def test_local_functions_are_parsed_from_the_environment_value() -> None:
    # Given a TASKENGINE_LOCAL_FUNCTIONS value with two entries and stray spaces
    value = f" record = {__name__}:record_event , fails={__name__}:raise_error,"

    # When it is parsed
    invoker = PythonFunctionInvoker.from_env_value(value)

    # Then both names run their callables
    event = json.dumps({"task_id": "01JENV", "payload": 1}).encode()
    assert invoker.invoke("record", event, TIMEOUT_SECONDS).function_error is None
    assert invoker.invoke("fails", event, TIMEOUT_SECONDS).function_error == "Unhandled"


@pytest.mark.parametrize("value", ["record", "record=", "=mod:attr", "record=module_only"])
def test_a_malformed_local_function_entry_is_rejected(value: str) -> None:
    # Given an entry without a name, a module or an attribute
    # When it is parsed
    # Then it is rejected at start-up rather than at the first task
    with pytest.raises(ValueError, match="expected"):
        PythonFunctionInvoker.from_env_value(value)


def test_an_empty_environment_value_configures_no_functions() -> None:
    # Given an empty TASKENGINE_LOCAL_FUNCTIONS
    invoker = PythonFunctionInvoker.from_env_value("")

    # When any function is invoked
    # Then it is not found
    with pytest.raises(InvokeError) as raised:
        invoker.invoke("record", b"{}", TIMEOUT_SECONDS)
    assert raised.value.code == "ResourceNotFoundException"
    assert not raised.value.retryable


def test_an_http_target_is_not_run_by_the_lambda_executor(
    local_executor: LambdaExecutor,
) -> None:
    # Given an HTTP target handed to the Lambda executor by mistake
    target = HttpTarget(url="https://svc.example/hook")

    # When it runs
    # Then the mistake is raised, not recorded as an attempt outcome
    with pytest.raises(TypeError):
        local_executor.execute(target, {}, _context())
