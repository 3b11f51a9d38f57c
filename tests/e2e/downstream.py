"""A downstream service of the tests' own: scripted answers per path, every call recorded."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"


@dataclass(frozen=True)
class Call:
    path: str
    method: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    @property
    def attempt(self) -> int:
        return int(self.headers["x-task-attempt"])


class Downstream:
    """Answers each path with its script in order; the last reply repeats once it runs out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {}
        self._calls: dict[str, list[Call]] = defaultdict(list)

    def script(self, path: str, *replies: Reply) -> str:
        with self._lock:
            self._scripts[path] = list(replies) or [Reply()]
        return f"{self.url}{path}"

    def calls(self, path: str) -> list[Call]:
        with self._lock:
            return list(self._calls[path])

    def answer(self, call: Call) -> Reply:
        with self._lock:
            self._calls[call.path].append(call)
            script = self._scripts.get(call.path, [Reply(404)])
            return script.pop(0) if len(script) > 1 else script[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        call = Call(
            path=self.path,
            method=self.command,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            received_at=time.time(),
        )
        reply = self.server.downstream.answer(call)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded calls are the log."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    downstream: Downstream


@contextmanager
def serve_downstream() -> Iterator[Downstream]:
    server = _Server(("127.0.0.1", 0), _Handler)
    host, port = server.server_address[:2]
    server.downstream = Downstream(f"http://{host!s}:{port}")
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield server.downstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
