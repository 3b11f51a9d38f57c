"""The API Gateway stand-in: HTTP request -> payload 2.0 event -> HTTP response, over sockets."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from taskengine_local.apigw import ApiGatewayServer
from taskengine_local.stack import StackOptions


class StandInHandler:
    """Records each event and answers with whatever the test scripted."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.result: Any = {"statusCode": 204, "headers": {}, "body": ""}
        self.error: Exception | None = None

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def handler() -> StandInHandler:
    return StandInHandler()


@pytest.fixture
def api(handler: StandInHandler) -> Iterator[httpx.Client]:
    server = ApiGatewayServer(handler, host="127.0.0.1", port=0)
    server.start()
    try:
        with httpx.Client(base_url=server.url) as client:
            yield client
    finally:
        server.stop()


def test_a_request_becomes_a_payload_2_event(api: httpx.Client, handler: StandInHandler) -> None:
    # Given a JSON request with a query string, custom headers and a cookie
    # When it is sent to the stand-in
    api.post(
        "/v1/tasks?limit=5&status=A&status=B",
        content=b'{"a": 1}',
        headers={"X-Custom": "yes", "Content-Type": "application/json", "Cookie": "s=1; t=2"},
    )

    # Then the handler sees the event API Gateway would send
    (event,) = handler.events
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/v1/tasks"
    assert event["rawQueryString"] == "limit=5&status=A&status=B"
    assert event["queryStringParameters"] == {"limit": "5", "status": "A,B"}
    assert event["headers"]["x-custom"] == "yes"
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["body"] == '{"a": 1}'
    assert event["isBase64Encoded"] is False


def test_the_request_context_names_method_path_source_and_stage(
    api: httpx.Client, handler: StandInHandler
) -> None:
    # Given / When a GET with a user agent
    api.get("/v1/tasks/abc", headers={"User-Agent": "probe/1.0"})

    # Then the request context is filled as API Gateway fills it
    context = handler.events[0]["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/v1/tasks/abc",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "probe/1.0",
    }
    assert context["routeKey"] == "$default"
    assert context["stage"] == "$default"
    assert context["requestId"]
    assert isinstance(context["timeEpoch"], int)
    assert context["time"].endswith("+0000")


def test_a_request_without_body_or_query_omits_those_fields(
    api: httpx.Client, handler: StandInHandler
) -> None:
    # Given / When a bare GET
    api.get("/health")

    # Then, as with API Gateway, neither body nor queryStringParameters is present
    (event,) = handler.events
    assert "body" not in event
    assert "queryStringParameters" not in event
    assert event["rawQueryString"] == ""


def test_a_binary_body_arrives_base64_encoded(api: httpx.Client, handler: StandInHandler) -> None:
    # Given bytes that are not UTF-8
    payload = b"\xff\xfe\x00binary"

    # When they are posted
    api.post("/upload", content=payload, headers={"Content-Type": "application/octet-stream"})

    # Then the event carries them base64-encoded and says so
    (event,) = handler.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_the_handler_gets_a_lambda_like_context(api: httpx.Client, handler: StandInHandler) -> None:
    # Given / When any request
    api.get("/health")

    # Then the context carries what Powertools reads from a Lambda context
    (context,) = handler.contexts
    assert context.function_name
    assert context.invoked_function_arn.startswith("arn:aws:lambda:")
    assert context.aws_request_id
    assert context.memory_limit_in_mb > 0
    assert context.get_remaining_time_in_millis() > 0


def test_the_handler_response_is_written_back(api: httpx.Client, handler: StandInHandler) -> None:
    # Given a handler answering with status, headers, cookies and a body
    handler.result = {
        "statusCode": 202,
        "headers": {"Content-Type": "application/json", "Location": "/v1/tasks/1"},
        "cookies": ["a=1", "b=2"],
        "body": json.dumps({"task_id": "1"}),
        "isBase64Encoded": False,
    }

    # When a request is made
    response = api.post("/v1/tasks", json={})

    # Then the HTTP response is exactly that
    assert response.status_code == 202
    assert response.headers["location"] == "/v1/tasks/1"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.json() == {"task_id": "1"}


def test_a_base64_response_body_is_decoded(api: httpx.Client, handler: StandInHandler) -> None:
    # Given a handler answering with a base64-encoded body
    handler.result = {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(b"\x89PNG").decode(),
        "isBase64Encoded": True,
    }

    # When / Then the client receives the raw bytes
    assert api.get("/logo.png").content == b"\x89PNG"


def test_a_bare_result_is_served_as_json_200(api: httpx.Client, handler: StandInHandler) -> None:
    # Given a handler returning a plain dict, which API Gateway wraps in a 200 JSON response
    handler.result = {"hello": "world"}

    # When / Then
    response = api.get("/anything")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world"}


def test_a_crashing_handler_gives_api_gateways_500(
    api: httpx.Client, handler: StandInHandler
) -> None:
    # Given a handler that raises
    handler.error = RuntimeError("boom")

    # When / Then the client sees API Gateway's fixed answer, not the exception
    response = api.get("/v1/tasks/1")
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}


def test_a_head_request_gets_headers_and_no_body(
    api: httpx.Client, handler: StandInHandler
) -> None:
    # Given a handler with a body to send
    handler.result = {"statusCode": 200, "headers": {}, "body": "hello"}

    # When / Then a HEAD request gets the length but no content
    response = api.head("/health")
    assert response.status_code == 200
    assert response.headers["content-length"] == "5"
    assert response.content == b""


def test_the_stack_refuses_to_bind_a_non_loopback_address() -> None:
    # Given / When / Then
    with pytest.raises(ValueError, match="loopback"):
        StackOptions(host="0.0.0.0")


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: -1\r\n",
        "Content-Length: abc\r\n",
        "Content-Length: 1_0\r\n",
        "Transfer-Encoding: chunked\r\n\r\nzz",
        "Transfer-Encoding: chunked\r\n\r\n-1",
    ],
)
def test_a_body_with_a_malformed_size_gets_a_400_and_never_reaches_the_handler(
    api: httpx.Client, handler: StandInHandler, framing: str
) -> None:
    # Given a request whose body length cannot be read
    request = f"POST /v1/tasks HTTP/1.1\r\nHost: local\r\n{framing}\r\n"

    # When it is sent on a raw connection
    with socket.create_connection((api.base_url.host, api.base_url.port), timeout=5) as conn:
        conn.sendall(request.encode())
        answer = conn.recv(4096)

    # Then the gateway answers at once with API Gateway's 400, as a deployed API would
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert handler.events == []
