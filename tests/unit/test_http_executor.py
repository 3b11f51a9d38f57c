"""HttpExecutor against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import json
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from taskengine.executors import AttemptContext
from taskengine.executors.http import FORBIDDEN_ADDRESS_ERROR, HttpExecutor, host_is_forbidden
from taskengine.models import AttemptOutcome, HttpTarget, LambdaTarget

NOW = datetime(2026, 12, 3, 18, 0, 0, tzinfo=UTC)
TIMEOUT_SECONDS = 5.0
SHORT_TIMEOUT_SECONDS = 0.3
DRIP_INTERVAL_SECONDS = 0.3
# How far past its timeout an attempt may end: an upper bound, not a window.
TIMEOUT_SLACK_SECONDS = 2.0


@dataclass
class Received:
    method: str
    path: str
    headers: Message  # case-insensitive, as HTTP header names are
    body: bytes


@dataclass
class Downstream:
    base_url: str
    port: int
    received: dict[str, list[Received]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def requests_to(self, token: str) -> list[Received]:
        return self.received.get(token, [])


def _handler_for(downstream: Downstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            segments = parts.path.strip("/").split("/")
            if segments[0] == "echo":
                record = Received(self.command, self.path, self.headers, body)
                downstream.received.setdefault(segments[1], []).append(record)
                self._reply(200, b'{"ok":true}')
            elif segments[0] == "status":
                self._reply(int(segments[1]), query.get("body", "").encode(), query)
            elif segments[0] == "slow":
                downstream.release.wait(10)
                self._reply(200, b"late")
            elif segments[0] == "redirect":
                self._reply(302, b"", {"Location": "/echo/redirected"})

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                if name != "body":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

    return Handler


@pytest.fixture(scope="module")
def downstream() -> Iterator[Downstream]:
    placeholder = Downstream(base_url="", port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(placeholder))
    server.daemon_threads = True
    placeholder.port = server.server_address[1]
    placeholder.base_url = f"http://127.0.0.1:{placeholder.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield placeholder
    placeholder.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def executor() -> Iterator[HttpExecutor]:
    running = HttpExecutor(allow_loopback=True, clock=lambda: NOW)
    yield running
    running.close()


def _context(
    task_id: str = "task-1",
    generation: int = 0,
    attempt: int = 1,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> AttemptContext:
    return AttemptContext(task_id, generation, attempt, timeout_seconds)


def _run(
    executor: HttpExecutor,
    url: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    context: AttemptContext | None = None,
) -> Any:
    target = HttpTarget(url=url, body=body, headers=headers or {})
    return executor.execute(target, secrets or {}, context or _context())


def _resolver_to(address: str) -> Any:
    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


def _new_token() -> str:
    return uuid.uuid4().hex


@dataclass
class RawDownstream:
    """A one-connection server that writes a scripted response, some of it a byte at a time."""

    url: str
    closed: threading.Event  # the client closed the connection before the response was out


def _read_request_head(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def _serve_once(
    listener: socket.socket, response: bytes, drip_from: int, closed: threading.Event
) -> None:
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    with conn:
        try:
            _read_request_head(conn)
            conn.sendall(response[:drip_from])
            for index in range(drip_from, len(response)):
                # Wait one interval, noticing at once if the client hangs up meanwhile.
                readable, _, _ = select.select([conn], [], [], DRIP_INTERVAL_SECONDS)
                if readable and not conn.recv(4096):
                    closed.set()
                    return
                conn.sendall(response[index : index + 1])
        except OSError:
            closed.set()


@contextmanager
def _raw_downstream(response: bytes, drip_from: int | None = None) -> Iterator[RawDownstream]:
    """Serve response once; from byte drip_from on (default: the end) one byte per interval."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    closed = threading.Event()
    start = len(response) if drip_from is None else drip_from
    thread = threading.Thread(
        target=_serve_once, args=(listener, response, start, closed), daemon=True
    )
    thread.start()
    try:
        yield RawDownstream(f"http://127.0.0.1:{listener.getsockname()[1]}/hook", closed)
    finally:
        listener.close()
        thread.join(timeout=1)


# Classification of responses


@pytest.mark.parametrize("status", [200, 201, 204])
def test_a_2xx_response_is_a_success(
    executor: HttpExecutor, downstream: Downstream, status: int
) -> None:
    # Given a downstream answering with a 2xx status
    url = downstream.url(f"/status/{status}")

    # When the attempt runs
    result = _run(executor, url)

    # Then it succeeded and records the status without an error
    assert result.outcome is AttemptOutcome.SUCCEEDED
    assert result.status_code == status
    assert result.error is None


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(400, "Bad Request"), (404, "Not Found"), (409, "Conflict"), (422, "Unprocessable Entity")],
)
def test_a_client_error_other_than_the_retryable_ones_is_a_permanent_failure(
    executor: HttpExecutor, downstream: Downstream, status: int, phrase: str
) -> None:
    # Given a downstream rejecting the request with a 4xx status and a body explaining why
    url = downstream.url(f"/status/{status}?body=bad+input")

    # When the attempt runs
    result = _run(executor, url)

    # Then the failure is permanent and the error names the status, never the body
    assert result.outcome is AttemptOutcome.PERMANENT_FAILURE
    assert result.status_code == status
    assert result.error == f"HTTP {status} {phrase}"


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (408, "Request Timeout"),
        (425, "Too Early"),
        (429, "Too Many Requests"),
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (503, "Service Unavailable"),
        (504, "Gateway Timeout"),
    ],
)
def test_timeouts_throttles_and_server_errors_are_retryable(
    executor: HttpExecutor, downstream: Downstream, status: int, phrase: str
) -> None:
    # Given a downstream answering with a status worth retrying and a body
    url = downstream.url(f"/status/{status}?body=try+later")

    # When the attempt runs
    result = _run(executor, url)

    # Then the failure is retryable and the error names the status, never the body
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.status_code == status
    assert result.error == f"HTTP {status} {phrase}"
    assert result.retry_after_seconds is None


def test_an_error_body_echoing_the_payload_stays_out_of_the_error(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a downstream whose error body echoes what the request carried
    card = "4111111111111111"
    url = downstream.url("/status/500?" + str(httpx.QueryParams({"body": f"you sent card={card}"})))

    # When the attempt runs with that payload
    result = _run(executor, url, body={"card": card})

    # Then the error is the status alone: nothing of the body is stored, returned or logged
    assert result.error == "HTTP 500 Internal Server Error"
    assert card not in result.error


def test_a_reason_phrase_of_the_downstreams_own_is_not_quoted(executor: HttpExecutor) -> None:
    # Given a downstream that puts the payload in its status line as well as in its body
    card = "4111111111111111"
    body = f"you sent card={card}".encode()
    response = (
        f"HTTP/1.1 500 you sent card={card}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )

    # When the attempt runs
    with _raw_downstream(response) as raw:
        result = _run(executor, raw.url, body={"card": card})

    # Then the error carries the standard phrase for the status, not the downstream's text
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.error == "HTTP 500 Internal Server Error"


def test_retry_after_in_seconds_is_reported_with_a_429(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a throttling downstream asking for two minutes
    url = downstream.url("/status/429?Retry-After=120")

    # When the attempt runs
    result = _run(executor, url)

    # Then the wait it asked for comes back with the retryable outcome
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.retry_after_seconds == 120.0


def test_retry_after_as_an_http_date_is_measured_from_the_executor_clock(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given an unavailable downstream asking to come back 90 s after the executor's now
    when = email.utils.format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    url = downstream.url("/status/503?" + httpx.QueryParams({"Retry-After": when}).__str__())

    # When the attempt runs
    result = _run(executor, url)

    # Then the wait is the distance from the clock to that date
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.status_code == 503
    assert result.retry_after_seconds == 90.0


def test_a_redirect_is_not_followed_and_is_a_permanent_failure(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a downstream that redirects
    url = downstream.url("/redirect")

    # When the attempt runs
    result = _run(executor, url)

    # Then the redirect is reported, not followed
    assert result.outcome is AttemptOutcome.PERMANENT_FAILURE
    assert result.status_code == 302
    assert result.error == "HTTP 302 Found: redirect not followed"
    assert downstream.requests_to("redirected") == []


def test_a_response_slower_than_the_timeout_is_a_retryable_timeout(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a downstream that answers later than the attempt's timeout
    context = _context(timeout_seconds=SHORT_TIMEOUT_SECONDS)

    # When the attempt runs
    result = _run(executor, downstream.url("/slow"), context=context)

    # Then it fails as a retryable timeout with no status
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.status_code is None
    assert result.error == f"timeout after {SHORT_TIMEOUT_SECONDS:g}s"


def test_a_response_dripping_in_slower_than_the_timeout_is_cut_off_at_the_timeout(
    executor: HttpExecutor,
) -> None:
    # Given a downstream that sends its whole response, status line and headers included,
    # one byte at a time: every read is quick, the response as a whole is not
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    context = _context(timeout_seconds=1)

    # When the attempt runs with a one-second timeout
    with _raw_downstream(response, drip_from=0) as raw:
        started = time.monotonic()
        result = _run(executor, raw.url, context=context)
        elapsed = time.monotonic() - started

        # Then it ends at the timeout as a retryable timeout, having hung up on the downstream
        assert elapsed < 1 + TIMEOUT_SLACK_SECONDS
        assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
        assert result.status_code is None
        assert result.error == "timeout after 1s"
        assert raw.closed.wait(TIMEOUT_SLACK_SECONDS)


def test_a_body_dripping_in_after_the_status_is_cut_off_at_the_timeout(
    executor: HttpExecutor,
) -> None:
    # Given a downstream that sends its status and headers at once, then its body slowly
    body = b"x" * 40
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    context = _context(timeout_seconds=1)

    # When the attempt runs with a one-second timeout
    with _raw_downstream(head + body, drip_from=len(head)) as raw:
        started = time.monotonic()
        result = _run(executor, raw.url, context=context)
        elapsed = time.monotonic() - started

        # Then the status decides the outcome, the body is not awaited past the timeout,
        # and the connection is dropped rather than left half read
        assert elapsed < 1 + TIMEOUT_SLACK_SECONDS
        assert result.outcome is AttemptOutcome.SUCCEEDED
        assert result.status_code == 200
        assert raw.closed.wait(TIMEOUT_SLACK_SECONDS)


def test_concurrent_attempts_each_keep_to_their_own_timeout(executor: HttpExecutor) -> None:
    # Given two attempts on one executor at once: one with a one-second timeout against a
    # downstream that never finishes in time, one with a five-second timeout against a
    # downstream that finishes in about 1.5 s
    never = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    body = b"x" * 5
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()

    # When they run on two threads
    with (
        _raw_downstream(never, drip_from=0) as short,
        _raw_downstream(head + body, drip_from=len(head)) as long,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        short_run = pool.submit(_run, executor, short.url, context=_context(timeout_seconds=1))
        long_run = pool.submit(
            _run, executor, long.url, context=_context(timeout_seconds=TIMEOUT_SECONDS)
        )
        short_result = short_run.result(timeout=TIMEOUT_SECONDS + TIMEOUT_SLACK_SECONDS)
        long_result = long_run.result(timeout=TIMEOUT_SECONDS + TIMEOUT_SLACK_SECONDS)

    # Then the short one timed out and the long one, outliving the short one's deadline,
    # got its whole response
    assert short_result.error == "timeout after 1s"
    assert long_result.outcome is AttemptOutcome.SUCCEEDED
    assert long_result.duration_ms > 1000


def test_a_refused_connection_is_retryable_and_names_the_error() -> None:
    # Given a port that is bound but not listening, so connections are refused
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        executor = HttpExecutor(allow_loopback=True)

        # When the attempt runs
        result = _run(executor, f"http://127.0.0.1:{port}/hook")
        executor.close()

    # Then it is a retryable connection error
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.status_code is None
    assert result.error is not None
    assert result.error.startswith("ConnectError")


def test_the_duration_of_an_attempt_is_measured(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a downstream that answers at once
    url = downstream.url("/status/200")

    # When the attempt runs
    result = _run(executor, url)

    # Then a whole number of milliseconds is recorded
    assert isinstance(result.duration_ms, int)
    assert result.duration_ms >= 0


# What the downstream receives


def test_the_downstream_receives_the_task_headers_the_secret_and_the_json_body(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a target with a plain header, a sealed secret and a JSON body with awkward floats
    token = _new_token()
    body = {"amount": 12.5, "tiny": 1e-7, "name": "café", "items": [1, None, True]}
    context = _context(task_id="01JTASK", generation=2, attempt=3)

    # When the attempt runs
    _run(
        executor,
        downstream.url(f"/echo/{token}"),
        body=body,
        headers={"X-Tenant": "acme"},
        secrets={"Authorization": "Bearer s3cret-value"},
        context=context,
    )

    # Then the downstream got every header and exactly the body
    [received] = downstream.requests_to(token)
    assert received.method == "POST"
    assert received.headers["X-Task-Id"] == "01JTASK"
    assert received.headers["X-Task-Attempt"] == "3"
    assert received.headers["Idempotency-Key"] == context.idempotency_key
    assert received.headers["X-Tenant"] == "acme"
    assert received.headers["Authorization"] == "Bearer s3cret-value"
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["User-Agent"].startswith("taskengine/")
    assert json.loads(received.body) == body


def test_the_idempotency_key_is_stable_across_attempts_of_one_generation(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given two attempts of generation 0 and one of generation 1
    token = _new_token()
    url = downstream.url(f"/echo/{token}")

    # When they run
    for generation, attempt in [(0, 1), (0, 2), (1, 1)]:
        _run(executor, url, context=_context(generation=generation, attempt=attempt))

    # Then the two attempts of generation 0 share a key and the replay has its own
    keys = [received.headers["Idempotency-Key"] for received in downstream.requests_to(token)]
    assert keys[0] == keys[1]
    assert keys[2] != keys[0]


def test_a_string_body_is_sent_as_is_with_the_callers_content_type(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a text body and the caller's own Content-Type
    token = _new_token()

    # When the attempt runs
    _run(
        executor,
        downstream.url(f"/echo/{token}"),
        body="a=1&b=2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    # Then the bytes and the Content-Type are the caller's
    [received] = downstream.requests_to(token)
    assert received.body == b"a=1&b=2"
    assert received.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_a_json_body_keeps_the_callers_content_type_whatever_its_case(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a JSON body and a content-type header spelt in lower case
    token = _new_token()

    # When the attempt runs
    _run(
        executor,
        downstream.url(f"/echo/{token}"),
        body={"a": 1},
        headers={"content-type": "application/vnd.acme+json"},
    )

    # Then the caller's type is the only one sent
    [received] = downstream.requests_to(token)
    assert received.headers["Content-Type"] == "application/vnd.acme+json"


def test_no_body_means_no_content(executor: HttpExecutor, downstream: Downstream) -> None:
    # Given a target without a body
    token = _new_token()

    # When the attempt runs
    _run(executor, downstream.url(f"/echo/{token}"))

    # Then nothing is sent and no Content-Type is invented
    [received] = downstream.requests_to(token)
    assert received.body == b""
    assert "Content-Type" not in received.headers


def test_a_secret_echoed_in_an_error_body_is_redacted(
    executor: HttpExecutor, downstream: Downstream
) -> None:
    # Given a downstream that echoes the Authorization value in its error body
    secret = "Bearer s3cret-value"
    url = downstream.url("/status/401?" + str(httpx.QueryParams({"body": f"bad {secret}"})))

    # When the attempt runs with that secret header
    result = _run(executor, url, secrets={"Authorization": secret})

    # Then the stored error names the status and holds neither the secret nor the body
    assert result.error == "HTTP 401 Unauthorized"
    assert "s3cret" not in result.error


# Address rules


def test_a_loopback_target_is_refused_when_loopback_is_not_allowed(
    downstream: Downstream,
) -> None:
    # Given an executor for a deployed engine
    executor = HttpExecutor(allow_loopback=False)

    # When a target on 127.0.0.1 runs
    token = _new_token()
    result = _run(executor, downstream.url(f"/echo/{token}"))
    executor.close()

    # Then it is refused for good and the downstream never hears of it
    assert result.outcome is AttemptOutcome.PERMANENT_FAILURE
    assert result.error == FORBIDDEN_ADDRESS_ERROR
    assert downstream.requests_to(token) == []


def test_a_host_name_that_resolves_to_loopback_is_refused(downstream: Downstream) -> None:
    # Given a DNS name that resolves to the loopback address
    executor = HttpExecutor(allow_loopback=False, resolver=_resolver_to("127.0.0.1"))

    # When a target on that name runs
    result = _run(executor, f"http://internal.example:{downstream.port}/status/200")
    executor.close()

    # Then it is refused
    assert result.outcome is AttemptOutcome.PERMANENT_FAILURE
    assert result.error == FORBIDDEN_ADDRESS_ERROR


def test_a_host_name_that_resolves_to_the_metadata_address_is_refused() -> None:
    # Given a DNS name that resolves to the instance metadata address
    executor = HttpExecutor(allow_loopback=True, resolver=_resolver_to("169.254.169.254"))

    # When a target on that name runs
    result = _run(executor, "http://metadata.example/latest/meta-data/")
    executor.close()

    # Then it is refused even where loopback is allowed
    assert result.outcome is AttemptOutcome.PERMANENT_FAILURE
    assert result.error == FORBIDDEN_ADDRESS_ERROR


def test_the_connection_goes_to_the_checked_address_under_the_original_host_name(
    downstream: Downstream,
) -> None:
    # Given a resolver that maps a DNS name to the downstream's address
    executor = HttpExecutor(allow_loopback=True, resolver=_resolver_to("127.0.0.1"))
    token = _new_token()

    # When a target on that name runs
    result = _run(executor, f"http://svc.internal.example:{downstream.port}/echo/{token}")
    executor.close()

    # Then the request reached the resolved address and still names the host
    assert result.outcome is AttemptOutcome.SUCCEEDED
    [received] = downstream.requests_to(token)
    assert received.headers["Host"] == f"svc.internal.example:{downstream.port}"


def test_a_host_name_that_does_not_resolve_is_retryable() -> None:
    # Given a resolver that fails, as DNS does during an outage
    def failing(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    executor = HttpExecutor(resolver=failing)

    # When a target on a DNS name runs
    result = _run(executor, "https://svc.example/hook")
    executor.close()

    # Then the failure is retryable
    assert result.outcome is AttemptOutcome.RETRYABLE_FAILURE
    assert result.error == "dns resolution failed"


def test_a_client_passed_in_is_still_subject_to_the_address_rules(
    downstream: Downstream,
) -> None:
    # Given an executor over a caller's own httpx client
    with httpx.Client() as client:
        executor = HttpExecutor(client=client, allow_loopback=False)

        # When a loopback target runs
        result = _run(executor, downstream.url("/status/200"))

    # Then it is refused before any request
    assert result.outcome is AttemptOutcome.PERMANENT_FAILURE
    assert result.error == FORBIDDEN_ADDRESS_ERROR


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "::1",
        "[::1]",
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "0.0.0.0",
        "169.254.169.254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "fd00:ec2::254",
        "224.0.0.1",
    ],
)
def test_loopback_link_local_and_multicast_literals_are_forbidden(host: str) -> None:
    # Given a literal host naming this machine, the metadata service or a multicast group
    # When it is checked without loopback allowed
    forbidden = host_is_forbidden(host, allow_loopback=False)

    # Then it is forbidden
    assert forbidden


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "172.16.5.4", "192.168.1.1", "8.8.8.8", "2001:db8::1", "example.com"]
)
def test_private_public_and_dns_names_are_allowed(host: str) -> None:
    # Given a private or public address, or a DNS name (checked when resolved)
    # When it is checked
    forbidden = host_is_forbidden(host, allow_loopback=False)

    # Then it is allowed
    assert not forbidden


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_is_allowed_when_the_setting_allows_it(host: str) -> None:
    # Given a loopback host and a local-mode engine
    # When it is checked with loopback allowed
    forbidden = host_is_forbidden(host, allow_loopback=True)

    # Then it is allowed
    assert not forbidden


def test_link_local_stays_forbidden_when_loopback_is_allowed() -> None:
    # Given the instance metadata address
    # When it is checked with loopback allowed
    forbidden = host_is_forbidden("169.254.169.254", allow_loopback=True)

    # Then it is still forbidden
    assert forbidden


def test_a_lambda_target_is_not_run_by_the_http_executor(executor: HttpExecutor) -> None:
    # Given a Lambda target handed to the HTTP executor by mistake
    target = LambdaTarget(function_name="billing-sync")

    # When it runs
    # Then the mistake is raised, not recorded as an attempt outcome
    with pytest.raises(TypeError):
        executor.execute(target, {}, _context())
