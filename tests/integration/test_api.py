"""The HTTP API's contract: problem details, listing, tenancy, secrets, health and docs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from harness import Api, Downstream, Worker, http_task
from ulid import ULID

import functions.api.handler as api_module
from taskengine import names, operations
from taskengine.models import TaskState, TaskStatus

TASKS = "/v1/tasks"
ADMIN = "/v1/admin/tasks"
URL = "https://svc.example.com/hook"
OTHER_USER = "arn:aws:iam::123456789012:user/someone-else"


def body(**changes: Any) -> str:
    task = http_task(URL)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = task
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return json.dumps(task)


UNKNOWN_ID = str(ULID())

BAD_REQUESTS = [
    # (id, method, path, request kwargs, expected status, expected field)
    (
        "bad url scheme",
        "POST",
        TASKS,
        {"raw_body": body(target__url="ftp://x/y")},
        422,
        "target.url",
    ),
    ("missing target", "POST", TASKS, {"raw_body": '{"delay_seconds": 1}'}, 422, "target"),
    (
        "unknown target type",
        "POST",
        TASKS,
        {"raw_body": '{"target": {"type": "smtp", "url": "x"}}'},
        422,
        "target",
    ),
    ("extra field", "POST", TASKS, {"raw_body": body(surprise=1)}, 422, "surprise"),
    (
        "infinite timeout as a string",
        "POST",
        TASKS,
        {"raw_body": body(target__timeout_seconds="inf")},
        422,
        "target.timeout_seconds",
    ),
    (
        "timeout beyond the float range",
        "POST",
        TASKS,
        {
            "raw_body": body(target__timeout_seconds=1).replace(
                '"timeout_seconds": 1', '"timeout_seconds": 1e400'
            )
        },
        422,
        "target.timeout_seconds",
    ),
    (
        "header name with a trailing newline",
        "POST",
        TASKS,
        {"raw_body": body(target__headers={"Authorization\n": "Bearer s3cret"})},
        422,
        "target.headers",
    ),
    (
        "extra target field",
        "POST",
        TASKS,
        {"raw_body": body(target__verb="GET")},
        422,
        "target.verb",
    ),
    (
        "zero attempts",
        "POST",
        TASKS,
        {"raw_body": body(retry__max_attempts=0)},
        422,
        "retry.max_attempts",
    ),
    (
        "attempts over the server limit",
        "POST",
        TASKS,
        {"raw_body": body(retry__max_attempts=10_000)},
        422,
        "retry.max_attempts",
    ),
    (
        "min backoff above max backoff",
        "POST",
        TASKS,
        {"raw_body": body(retry__min_backoff_seconds=10, retry__max_backoff_seconds=5)},
        422,
        "retry.min_backoff_seconds",
    ),
    (
        "min backoff above the default max backoff",
        "POST",
        TASKS,
        {"raw_body": body(retry__min_backoff_seconds=10_000, retry__max_backoff_seconds=None)},
        422,
        "retry.min_backoff_seconds",
    ),
    (
        "timeout over the limit",
        "POST",
        TASKS,
        {"raw_body": body(target__timeout_seconds=100_000)},
        422,
        "target.timeout_seconds",
    ),
    ("negative delay", "POST", TASKS, {"raw_body": body(delay_seconds=-1)}, 422, "delay_seconds"),
    (
        "schedule without time zone",
        "POST",
        TASKS,
        {"raw_body": body(schedule_at="2030-01-01T00:00:00")},
        422,
        "schedule_at",
    ),
    (
        "reserved header",
        "POST",
        TASKS,
        {"raw_body": body(target__headers={"X-Task-Id": "forged"})},
        422,
        "target.headers",
    ),
    (
        "idempotency key with spaces",
        "POST",
        TASKS,
        {"raw_body": body(), "headers": {"Idempotency-Key": "has spaces"}},
        422,
        "header.Idempotency-Key",
    ),
    (
        "idempotency key too long",
        "POST",
        TASKS,
        {"raw_body": body(), "headers": {"Idempotency-Key": "k" * 256}},
        422,
        "header.Idempotency-Key",
    ),
    (
        "delay as a string",
        "POST",
        TASKS,
        {"raw_body": body(delay_seconds="10")},
        422,
        "delay_seconds",
    ),
    (
        "attempts as a string",
        "POST",
        TASKS,
        {"raw_body": body(retry__max_attempts="3")},
        422,
        "retry.max_attempts",
    ),
    (
        "dry run as a word",
        "POST",
        "/v1/admin/dead-letters/redrive",
        {"raw_body": '{"dry_run": "no"}'},
        422,
        "dry_run",
    ),
    ("malformed json", "POST", TASKS, {"raw_body": '{"target": '}, 422, "body"),
    ("empty body", "POST", TASKS, {"raw_body": ""}, 422, "body"),
    ("array body", "POST", TASKS, {"raw_body": "[1, 2]"}, 422, "body"),
    ("string body", "POST", TASKS, {"raw_body": '"task"'}, 422, "body"),
    ("bad cursor", "GET", ADMIN, {"query": "cursor=not-a-cursor"}, 422, "cursor"),
    ("bad status filter", "GET", ADMIN, {"query": "status=SLEEPING"}, 422, "status"),
    ("limit zero", "GET", ADMIN, {"query": "limit=0"}, 422, "limit"),
    ("misspelt filter", "GET", ADMIN, {"query": "statuss=DEAD_LETTER"}, 422, "statuss"),
    ("limit too large", "GET", ADMIN, {"query": "limit=1000"}, 422, "limit"),
    ("limit not a number", "GET", ADMIN, {"query": "limit=ten"}, 422, "limit"),
    ("unknown task id", "GET", f"{TASKS}/{UNKNOWN_ID}", {}, 404, "task_id"),
    ("malformed task id", "GET", f"{TASKS}/not-a-task", {}, 404, "task_id"),
    ("cancel unknown task", "POST", f"{TASKS}/{UNKNOWN_ID}/cancel", {}, 404, "task_id"),
    ("retry unknown task", "POST", f"{ADMIN}/{UNKNOWN_ID}/retry", {}, 404, "task_id"),
    (
        "replay without a reason",
        "POST",
        f"{ADMIN}/{UNKNOWN_ID}/replay",
        {"raw_body": "{}"},
        422,
        "reason",
    ),
    (
        "cancel with a malformed body",
        "POST",
        f"{TASKS}/{UNKNOWN_ID}/cancel",
        {"raw_body": '{"reason": 5}'},
        422,
        "reason",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_REQUESTS],
)
def test_a_bad_request_gets_a_problem_naming_the_field(
    api: Api, method: str, path: str, kwargs: dict[str, Any], status: int, field: str
) -> None:
    response = api(method, path, **kwargs)

    assert response.status == status, response.text
    assert response.content_type == "application/problem+json"
    problem = response.json
    assert problem["status"] == status
    assert problem["field"] == field
    assert problem["type"].startswith("https://")
    assert problem["title"]
    assert problem["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("DELETE", f"{TASKS}/{UNKNOWN_ID}", "GET", id="delete a task"),
        pytest.param("GET", TASKS, "POST", id="list through submit"),
        pytest.param("GET", f"{TASKS}/{UNKNOWN_ID}/cancel", "POST", id="read the cancel route"),
    ],
)
def test_a_known_path_with_another_method_is_a_405_naming_the_allowed_ones(
    api: Api, method: str, path: str, allow: str
) -> None:
    response = api(method, path)

    assert response.status == 405
    assert response.content_type == "application/problem+json"
    assert response.headers["Allow"] == allow
    assert response.json["field"] == "method"


def test_a_malformed_id_on_a_route_the_method_has_is_a_404_not_a_405(api: Api) -> None:
    response = api("GET", f'{TASKS}/a"b')

    assert response.status == 404
    assert response.content_type == "application/problem+json"


def test_an_unknown_route_is_a_problem_too(api: Api) -> None:
    response = api("GET", "/v2/nothing")

    assert response.status == 404
    assert response.content_type == "application/problem+json"


def test_the_admin_listing_pages_newest_first_without_duplicates(api: Api) -> None:
    # Given five tasks
    created = [api("POST", TASKS, body=http_task(URL, delay_seconds=3600)) for _ in range(5)]
    task_ids = [response.json["task_id"] for response in created]

    # When they are listed two at a time
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api("GET", ADMIN, query=query).json
        pages.append([item["task_id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    # Then three pages hold every task once, newest first
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [task_id for page in pages for task_id in page] == list(reversed(task_ids))


def test_empty_listing_parameters_mean_no_filter_and_the_default_page(api: Api) -> None:
    # Given two tasks
    for _ in range(2):
        api("POST", TASKS, body=http_task(URL))

    # When the listing is asked for with every parameter present but empty
    response = api("GET", ADMIN, query="status=&limit=&cursor=")

    # Then it lists both, as if no parameter had been given
    assert response.status == 200, response.text
    assert len(response.json["items"]) == 2


def test_the_listing_filters_by_status(api: Api, downstream: Downstream, worker: Worker) -> None:
    done = api("POST", TASKS, body=http_task(downstream.url("/ok"))).json["task_id"]
    worker.drain()
    waiting = api("POST", TASKS, body=http_task(URL, delay_seconds=3600)).json["task_id"]

    completed = api("GET", ADMIN, query="status=COMPLETED").json["items"]
    pending = api("GET", ADMIN, query="status=PENDING").json["items"]

    assert [item["task_id"] for item in completed] == [done]
    assert [item["task_id"] for item in pending] == [waiting]


def test_another_tenants_task_is_not_found(api: Api) -> None:
    # Given a task submitted by the default (local) tenant
    task_id = api("POST", TASKS, body=http_task(URL, delay_seconds=60)).json["task_id"]

    # When another authenticated caller reads or cancels it
    read = api("GET", f"{TASKS}/{task_id}", user_arn=OTHER_USER)
    cancel = api("POST", f"{TASKS}/{task_id}/cancel", user_arn=OTHER_USER)

    # Then the task does not exist for them, and it is untouched
    assert read.status == 404
    assert cancel.status == 404
    assert api("GET", f"{TASKS}/{task_id}").json["status"] == "PENDING"


def test_a_callers_own_task_is_visible_to_them(api: Api) -> None:
    submitted = api("POST", TASKS, body=http_task(URL, delay_seconds=60), user_arn=OTHER_USER)

    read = api("GET", f"{TASKS}/{submitted.json['task_id']}", user_arn=OTHER_USER)

    assert read.status == 200
    assert read.json["tenant"] == OTHER_USER
    assert api("GET", f"{TASKS}/{submitted.json['task_id']}").status == 404


def test_idempotency_keys_are_per_tenant(api: Api) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    mine = api("POST", TASKS, body=http_task(URL), headers=headers)
    theirs = api(
        "POST", TASKS, body=http_task(URL, target={"body": 2}), headers=headers, user_arn=OTHER_USER
    )

    assert (mine.status, theirs.status) == (202, 202)
    assert mine.json["task_id"] != theirs.json["task_id"]


def test_secret_headers_reach_the_target_but_are_never_stored_or_returned(
    api: Api, downstream: Downstream, worker: Worker, dynamodb: Any
) -> None:
    # Given a task with secret headers
    secrets = {"Authorization": "Bearer tok-5f1c9a7e3b", "X-Api-Key": "key-8d2e4b6a0c"}
    headers = {**secrets, "X-Trace": "visible"}
    submitted = api(
        "POST", TASKS, body=http_task(downstream.url("/secret"), target={"headers": headers})
    )

    # When it runs and is read back
    worker.drain()
    read = api("GET", f"{TASKS}/{submitted.json['task_id']}")

    # Then the downstream got the real values
    [call] = downstream.calls_to("/secret")
    assert call.header("Authorization") == secrets["Authorization"]
    assert call.header("X-Api-Key") == secrets["X-Api-Key"]
    assert call.header("X-Trace") == "visible"

    # And neither API response shows them
    for response in (submitted, read):
        shown = response.json["target"]["headers"]
        assert shown == {
            "Authorization": "[redacted]",
            "X-Api-Key": "[redacted]",
            "X-Trace": "visible",
        }
        for value in secrets.values():
            assert value not in response.text

    # And no stored item holds them, in any encoding
    items = dynamodb.scan(TableName=names.TABLE_NAME)["Items"]
    raw = repr(items).encode() + b"".join(
        attribute["B"] for item in items for attribute in item.values() if "B" in attribute
    )
    for value in secrets.values():
        assert value.encode() not in raw
        assert value.split("-")[-1].encode() not in raw


def test_a_bad_request_never_gets_a_server_error(api: Api) -> None:
    for case in BAD_REQUESTS:
        method, path, kwargs = case[1:4]

        response = api(method, path, **kwargs)

        assert 400 <= response.status < 500, (case[0], response.text)
        assert response.content_type == "application/problem+json"
        assert response.json["field"], case[0]


def test_health_reports_every_dependency(api: Api) -> None:
    response = api("GET", "/health")

    assert response.status == 200
    assert response.json == {
        "status": "ok",
        "checks": {"dynamodb": "ok", "sqs": "ok", "redis": "ok"},
    }


def test_openapi_describes_the_task_routes(api: Api) -> None:
    response = api("GET", "/openapi.json")

    assert response.status == 200
    document = json.loads(response.text)
    assert document["openapi"].startswith("3.")
    assert "/v1/tasks" in document["paths"]
    assert "post" in document["paths"]["/v1/tasks"]
    assert "/v1/tasks/{task_id}" in document["paths"]


def test_openapi_names_the_idempotency_header_the_location_and_time_formats(api: Api) -> None:
    document = json.loads(api("GET", "/openapi.json").text)

    submit = document["paths"]["/v1/tasks"]["post"]
    redrive = document["paths"]["/v1/admin/dead-letters/redrive"]["post"]
    for operation in (submit, redrive):
        headers = [p["name"].lower() for p in operation["parameters"] if p["in"] == "header"]
        assert headers == ["idempotency-key"]
    assert "Location" in submit["responses"]["202"]["headers"]
    created_at = document["components"]["schemas"]["TaskView"]["properties"]["created_at"]
    assert created_at["format"] == "date-time"


def test_openapi_documents_every_error_as_a_problem(api: Api) -> None:
    document = json.loads(api("GET", "/openapi.json").text)

    errors = {
        (path, method, status): set(response["content"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if int(status) >= 400
    }

    # A failing health check answers with the health report itself.
    assert errors.pop(("/health", "get", "503")) == {"application/json"}
    assert ("/health", "get", "422") in errors
    assert all(types == {"application/problem+json"} for types in errors.values()), errors


def test_docs_serve_the_swagger_ui(api: Api) -> None:
    response = api("GET", "/docs")

    assert response.status == 200
    assert "text/html" in response.content_type
    assert "swagger" in response.text.lower()


def test_stats_count_tasks_by_status(api: Api) -> None:
    api("POST", TASKS, body=http_task(URL, delay_seconds=3600))

    stats = api("GET", "/v1/admin/stats").json

    assert stats["counts"]["PENDING"] == 1
    assert stats["counts"]["COMPLETED"] == 0
    assert set(stats["queues"]) == {"work", "dead_letter"}


def test_a_listing_that_fills_its_last_page_exactly_ends_there(api: Api) -> None:
    # Given four tasks
    for _ in range(4):
        api("POST", TASKS, body=http_task(URL, delay_seconds=3600))

    # When they are listed two at a time
    first = api("GET", ADMIN, query="limit=2").json
    second = api("GET", ADMIN, query=f"limit=2&cursor={first['next_cursor']}").json

    # Then the second page is the last one
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


def test_health_is_degraded_but_up_when_redis_is_unreachable(
    api: Api, make_engine: Any, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    monkeypatch.setattr(api_module, "default_engine", lambda: engine)

    response = api("GET", "/health")

    assert response.status == 200
    assert response.json["status"] == "degraded"
    assert response.json["checks"]["redis"] != "ok"


def test_submit_idempotency_holds_when_redis_is_unreachable(
    api: Api, make_engine: Any, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an API whose Redis is down
    engine = make_engine(redis_url=f"redis://127.0.0.1:{closed_port}/0")
    monkeypatch.setattr(api_module, "default_engine", lambda: engine)
    headers = {"Idempotency-Key": "no-redis"}

    # When the same request is sent twice, then a different one with the same key
    first = api("POST", TASKS, body=http_task(URL), headers=headers)
    again = api("POST", TASKS, body=http_task(URL), headers=headers)
    other = api("POST", TASKS, body=http_task(URL, target={"body": 3}), headers=headers)

    # Then DynamoDB alone keeps the promise
    assert (first.status, again.status, other.status) == (202, 200, 409)
    assert again.json["task_id"] == first.json["task_id"]


def test_a_task_read_in_two_status_partitions_is_listed_once_as_its_newer_self(
    api: Api, downstream: Downstream, worker: Worker, make_engine: Any, monkeypatch: Any
) -> None:
    # Given a completed task whose older PENDING entry a lagging index still returns
    task_id = api("POST", TASKS, body=http_task(downstream.url("/moved"))).json["task_id"]
    worker.drain()
    engine = make_engine()
    reads = engine.store.list_by_status

    def lagging(status: TaskStatus, before: str | None, limit: int) -> list[TaskState]:
        found = reads(status, before, limit)
        if status is TaskStatus.PENDING:
            [done] = reads(TaskStatus.COMPLETED, before, limit)
            found.append(done.model_copy(update={"status": TaskStatus.PENDING, "version": 0}))
        return found

    monkeypatch.setattr(engine.store, "list_by_status", lagging)

    # When every status is listed
    page = operations.list_tasks(engine, status=None, limit=10, cursor=None)

    # Then the task appears once, with its current status
    assert [(item.task_id, item.status) for item in page.items] == [(task_id, TaskStatus.COMPLETED)]
