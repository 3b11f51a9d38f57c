"""A downstream for trying the engine by hand: answers every request with a chosen status.

It prints one line per request it receives, with the engine's task headers, so a retry, a
dead letter and a replay can be watched from the receiving side too. Secret header values
are never printed, only their names.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rich.console import Console

from taskengine.models import is_secret_header

_SHOWN = ("X-Task-Id", "X-Task-Attempt", "Idempotency-Key")


def make_server(host: str, port: int, status: int, out: Console) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            shown = "  ".join(f"{name}={self.headers.get(name, '-')}" for name in _SHOWN)
            secrets = [
                name for name in self.headers if is_secret_header(name) and name not in _SHOWN
            ]
            suffix = f"  (secret headers received: {', '.join(secrets)})" if secrets else ""
            out.print(
                f"{self.command} {self.path} -> {status}  {shown}  {len(body)} bytes{suffix}",
                highlight=False,
            )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        # http.server dispatches on these method names.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            return

    return ThreadingHTTPServer((host, port), Handler)
