"""HTTP API: submit and read tasks, and the operator routes. Thin: parse, call, shape."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from functions.api.identity import caller
from functions.api.problems import PROBLEM_CONTENT_TYPE, problem, validation_problem
from functions.api.request_checks import check_request, drop_empty_query_parameters
from taskengine import __version__, operations, redrive, submission
from taskengine.engine import Engine, default_engine
from taskengine.errors import (
    ConflictError,
    DependencyError,
    InvalidRequestError,
    TaskNotFoundError,
)
from taskengine.models import (
    ActionRequest,
    HealthView,
    RedriveReport,
    RedriveRequest,
    ReplayRequest,
    StatsView,
    SubmitTaskRequest,
    TaskPage,
    TaskStatus,
    TaskView,
)
from taskengine.observability import logger, metrics, tracer

app = APIGatewayHttpResolver(enable_validation=True)
app.configure_openapi(
    title="taskengine",
    version=__version__,
    description="Submit background tasks; the engine runs, retries and dead-letters them.",
)
app.enable_swagger(path="/docs", title="taskengine", version=__version__)

JSON = "application/json"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=submission.IDEMPOTENCY_HEADER,
        description="1-255 visible ASCII characters; a repeated request with the same key and "
        "body is answered as the first one was, and applies once.",
    ),
]


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response carries them."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    field: str | None = None
    errors: list[dict[str, Any]] | None = None


_ERRORS: dict[int, str] = {
    404: "Unknown task (or another tenant's)",
    409: "Conflicts with the task's state or an earlier request",
    415: "The body's Content-Type is not JSON",
    422: "Invalid input (a body that is not JSON included); `field` names what is wrong",
    503: "A backing service is unavailable; retry",
}


def documented(
    ok: dict[int, tuple[str, type[BaseModel]]],
    *errors: int,
    headers: dict[int, dict[str, Any]] | None = None,
) -> dict[int, Any]:
    """OpenAPI responses for a route: its success bodies and its problem responses.

    Every route answers a body it cannot read with a 422 problem, so each documents one in
    place of the resolver's default schema.
    """
    responses: dict[int, Any] = {
        status: {"description": text, "content": {JSON: {"model": model}}}
        for status, (text, model) in ok.items()
    }
    for status, described in (headers or {}).items():
        responses[status]["headers"] = described
    for status in sorted({*errors, 422}):
        responses[status] = {
            "description": _ERRORS[status],
            "content": {PROBLEM_CONTENT_TYPE: {"model": Problem}},
        }
    return responses


def _engine() -> Engine:
    return default_engine()


def _json(status: int, model: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status, content_type=JSON, body=model.model_dump_json(), headers=headers
    )


def _refuse_unknown_query(known: set[str]) -> None:
    # A misspelt filter must not quietly widen a listing an operator acts on.
    for name in app.current_event.query_string_parameters or {}:
        if name not in known:
            raise InvalidRequestError(
                f"unknown query parameter; expected one of {', '.join(sorted(known))}",
                field=name,
            )


def _who() -> str:
    return caller(app.current_event.raw_event, _engine().settings)


@app.post(
    "/v1/tasks",
    summary="Submit a task",
    description="Send `Idempotency-Key` to make retries of this request safe.",
    responses=documented(
        {
            202: ("Accepted; `Location` names the task", TaskView),
            200: ("The task an earlier request with this Idempotency-Key created", TaskView),
        },
        409,
        415,
        422,
        503,
        headers={
            202: {"Location": {"description": "The task's path", "schema": {"type": "string"}}}
        },
    ),
)
def submit_task(
    request: Annotated[SubmitTaskRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[str]:
    engine = _engine()
    result = submission.submit(engine, request, tenant=_who(), idempotency_key=idempotency_key)
    task = operations.view(result.record)
    location = f"/v1/tasks/{task.task_id}"
    return _json(202 if result.created else 200, task, {"Location": location})


@app.get(
    "/v1/tasks/<task_id>",
    summary="Read a task and its attempts",
    responses=documented({200: ("The task", TaskView)}, 404),
)
def get_task(task_id: str) -> Response[str]:
    record = operations.get_task(_engine(), task_id, _who())
    return _json(200, operations.view(record))


@app.post(
    "/v1/tasks/<task_id>/cancel",
    summary="Cancel a task that has not finished",
    responses=documented({200: ("The cancelled task", TaskView)}, 404, 409, 422),
)
def cancel_task(task_id: str, idempotency_key: IdempotencyKey = None) -> Response[str]:
    body = _optional_body(ActionRequest)
    record = operations.cancel(
        _engine(),
        task_id,
        tenant=_who(),
        actor=_who(),
        reason=body.reason,
        action_key=submission.check_idempotency_key(idempotency_key),
    )
    return _json(200, operations.view(record))


@app.get(
    "/v1/admin/tasks",
    summary="List tasks, newest first",
    responses=documented({200: ("A page of tasks", TaskPage)}, 422),
)
def list_tasks(
    status: Annotated[TaskStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=operations.MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Response[str]:
    _refuse_unknown_query({"status", "limit", "cursor"})
    page: TaskPage = operations.list_tasks(_engine(), status=status, limit=limit, cursor=cursor)
    return _json(200, page)


@app.post(
    "/v1/admin/tasks/<task_id>/retry",
    summary="Run a RETRY_SCHEDULED task now",
    responses=documented({200: ("The task, due now", TaskView)}, 404, 409, 422),
)
def retry_task(task_id: str, idempotency_key: IdempotencyKey = None) -> Response[str]:
    body = _optional_body(ActionRequest)
    record = operations.retry_now(
        _engine(),
        task_id,
        actor=_who(),
        reason=body.reason,
        action_key=submission.check_idempotency_key(idempotency_key),
    )
    return _json(200, operations.view(record))


@app.post(
    "/v1/admin/tasks/<task_id>/replay",
    summary="Run a finished task again, as a new generation",
    responses=documented({200: ("The task, PENDING again", TaskView)}, 404, 409, 422),
)
def replay_task(
    task_id: str,
    request: Annotated[ReplayRequest, Body()],
    idempotency_key: IdempotencyKey = None,
) -> Response[str]:
    record = operations.replay(
        _engine(),
        task_id,
        actor=_who(),
        reason=request.reason,
        action_key=submission.check_idempotency_key(idempotency_key),
    )
    return _json(200, operations.view(record))


@app.post(
    "/v1/admin/dead-letters/redrive",
    summary="Replay dead-lettered tasks in bulk",
    description="With an `Idempotency-Key`, a repeated request returns the first report.",
    responses=documented({200: ("What was replayed and skipped", RedriveReport)}, 409, 422),
)
def redrive_dead_letters(
    request: Annotated[RedriveRequest, Body()], idempotency_key: IdempotencyKey = None
) -> Response[str]:
    report = redrive.redrive_once(
        _engine(),
        request,
        actor=_who(),
        key=submission.check_idempotency_key(idempotency_key),
        lambda_context=app.lambda_context,
    )
    return _json(200, report)


@app.get(
    "/v1/admin/stats",
    summary="Task counts by status and queue depths",
    responses=documented({200: ("Counts and depths", StatsView)}, 503),
)
def stats() -> Response[str]:
    view: StatsView = operations.stats(_engine())
    return _json(200, view)


@app.get(
    "/health",
    summary="Reachability of DynamoDB, SQS and Redis",
    responses=documented(
        {200: ("ok, or degraded without Redis", HealthView), 503: ("down", HealthView)}
    ),
)
def health() -> Response[str]:
    view: HealthView = operations.health(_engine())
    return _json(503 if view.status == "down" else 200, view)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type=JSON, body=app.get_openapi_json_schema())


def _optional_body(model: type[ActionRequest]) -> ActionRequest:
    """Action routes accept an empty body or a JSON object with an optional reason."""
    raw = app.current_event.body
    if not raw or not raw.strip():
        return model()
    try:
        return model.model_validate_json(raw)
    except ValueError as error:
        errors: list[Any] = getattr(error, "errors", list)()
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from error


@app.exception_handler(RequestValidationError)
def _invalid(error: RequestValidationError) -> Response[str]:
    return validation_problem(error.errors(), app.current_event.path)


@app.exception_handler(InvalidRequestError)
def _invalid_by_rule(error: InvalidRequestError) -> Response[str]:
    return problem(
        422,
        f"{error.field}: {error}",
        kind="validation-error",
        instance=app.current_event.path,
        field=error.field,
        errors=[{"field": error.field, "message": str(error), "type": "server_rule"}],
    )


@app.exception_handler(TaskNotFoundError)
def _missing(error: TaskNotFoundError) -> Response[str]:
    return problem(
        404, str(error), kind="task-not-found", instance=app.current_event.path, field="task_id"
    )


@app.exception_handler(ConflictError)
def _conflict(error: ConflictError) -> Response[str]:
    return problem(
        409, str(error), kind="conflict", instance=app.current_event.path, field=error.field
    )


@app.exception_handler(PermissionError)
def _unauthenticated(error: PermissionError) -> Response[str]:
    return problem(401, str(error), kind="unauthenticated", instance=app.current_event.path)


@app.exception_handler(DependencyError)
def _unavailable(error: DependencyError) -> Response[str]:
    logger.warning("dependency unavailable", extra={"error": str(error)})
    return problem(
        503,
        "a backing service is unavailable; retry with the same Idempotency-Key",
        kind="unavailable",
        instance=app.current_event.path,
        headers={"Retry-After": "1"},
    )


def _path_pattern(path: str) -> re.Pattern[str]:
    """/v1/tasks/{task_id} as a pattern that any one segment fills in for the parameter."""
    segments = (
        "[^/]+" if part.startswith("{") and part.endswith("}") else re.escape(part)
        for part in path.split("/")
    )
    return re.compile("^" + "/".join(segments) + "$")


@lru_cache(maxsize=1)
def _route_methods() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    """Each documented path with the methods it answers, read once and only on a miss."""
    paths = app.get_openapi_schema().paths or {}
    return tuple(
        (
            _path_pattern(path),
            frozenset(
                method.upper()
                for method in ("get", "put", "post", "delete", "patch")
                if getattr(item, method, None) is not None
            ),
        )
        for path, item in paths.items()
    )


@app.not_found
def _no_route(error: NotFoundError) -> Response[str]:
    path = app.current_event.path
    allowed = sorted(
        {
            method
            for pattern, methods in _route_methods()
            if pattern.match(path)
            for method in methods
        }
    )
    # A path the resolver did not match under its own method is a malformed parameter.
    if allowed and app.current_event.http_method not in allowed:
        return problem(
            405,
            f"{app.current_event.http_method} is not allowed here; use {', '.join(allowed)}",
            kind="method-not-allowed",
            instance=path,
            field="method",
            headers={"Allow": ", ".join(allowed)},
        )
    return problem(
        404,
        "no such route",
        kind="route-not-found",
        instance=app.current_event.path,
        field="path",
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rejected = check_request(event)
    if rejected is not None:
        return rejected

    drop_empty_query_parameters(event)
    return app.resolve(event, context)
