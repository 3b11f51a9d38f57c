"""An HTTP server that plays API Gateway (HTTP API, payload 2.0) in front of a Lambda handler.

Each request becomes the event API Gateway would send; the handler's result becomes the HTTP
response, with the same defaults API Gateway applies to a result that is not a response object.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from taskengine_local import aws_constants
from taskengine_local.lambda_context import LocalLambdaContext

LambdaHandler = Callable[[dict[str, Any], Any], Any]

# API Gateway rejects larger payloads before the function ever sees them.
MAX_BODY_BYTES = 10 * 1024 * 1024
API_ID = "local"
FUNCTION_NAME = "taskengine-api"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def to_event(request: HttpRequest, *, now: datetime | None = None) -> dict[str, Any]:
    """The API Gateway HTTP API payload 2.0 event for one request."""
    moment = now or datetime.now(UTC)
    raw_path, _, raw_query = request.target.partition("?")
    headers, cookies = _event_headers(request)
    user_agent = headers.get("user-agent", "")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": aws_constants.ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": raw_path,
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": user_agent,
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(moment.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    query = _joined(parse_qsl(raw_query, keep_blank_values=True))
    if query:
        event["queryStringParameters"] = query
    if request.body:
        event["body"], event["isBase64Encoded"] = _event_body(request.body)
    return event


def to_response(result: Any) -> HttpResponse:
    """Shape a handler result as API Gateway does, including its defaults for bare values."""
    if not (isinstance(result, Mapping) and "statusCode" in result):
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], text.encode())
    raw_body = result.get("body") or ""
    body = base64.b64decode(raw_body) if result.get("isBase64Encoded") else raw_body.encode()
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or ())
    return HttpResponse(int(result["statusCode"]), headers, body)


def _event_headers(request: HttpRequest) -> tuple[dict[str, str], list[str]]:
    cookies: list[str] = []
    pairs: list[tuple[str, str]] = []
    for name, value in request.headers:
        lowered = name.lower()
        if lowered == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
        else:
            pairs.append((lowered, value))
    pairs.extend(
        [
            ("x-forwarded-for", request.source_ip),
            ("x-forwarded-proto", "http"),
            ("x-amzn-trace-id", f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"),
        ]
    )
    return _joined(pairs), cookies


def _joined(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Payload 2.0 folds repeated names into one comma-separated value."""
    folded: dict[str, str] = {}
    for name, value in pairs:
        folded[name] = f"{folded[name]},{value}" if name in folded else value
    return folded


def _event_body(body: bytes) -> tuple[str, bool]:
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _size(text: str | bytes, base: int) -> int:
    """A body or chunk size; ValueError when it is not a plain non-negative number."""
    digits = (text.decode("ascii", "replace") if isinstance(text, bytes) else text).strip()
    # int() alone would also take a sign or underscores.
    if not (digits.isascii() and digits.isalnum()):
        raise ValueError(f"invalid size {digits!r}")
    return int(digits, base)


class ApiGatewayServer:
    """Serves HTTP on a loopback port and hands every request to one Lambda handler."""

    def __init__(self, handler: LambdaHandler, *, host: str, port: int) -> None:
        self._httpd = _Server((host, port), _RequestHandler)
        self._httpd.lambda_handler = handler
        # A short poll interval keeps stop() quick; the cost is a wake-up every 0.1 s.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="api-gateway", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when a client bursts requests.
    request_queue_size = 128
    lambda_handler: LambdaHandler


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(
                HttpResponse(
                    400, [("content-type", "application/json")], b'{"message":"Bad Request"}'
                )
            )
            return
        if body is None:
            self._send(
                HttpResponse(
                    413,
                    [("content-type", "application/json")],
                    b'{"message":"Request Entity Too Large"}',
                )
            )
            return
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
            host=self.headers.get("host") or str(self.server.server_address[0]),
        )
        self._send(self._invoke(request))

    # http.server looks these names up per request method.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch  # noqa: N815

    def _invoke(self, request: HttpRequest) -> HttpResponse:
        try:
            result = self.server.lambda_handler(
                to_event(request),
                LocalLambdaContext(function_name=FUNCTION_NAME, timeout_seconds=30),
            )
            return to_response(result)
        except Exception:
            # API Gateway answers a crashed integration with this fixed 500; the trace goes to
            # the log so the developer sees what the function raised.
            logger.exception("api handler raised")
            return HttpResponse(
                500, [("content-type", "application/json")], b'{"message":"Internal Server Error"}'
            )

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = _size(self.headers.get("content-length") or "0", 10)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while size := _size(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers carry nothing API Gateway forwards
        return b"".join(chunks)

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)
