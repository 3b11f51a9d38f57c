"""The moto server the local stack talks to, with DynamoDB requests made atomic.

moto's server handles requests on concurrent threads and evaluates a ConditionExpression
and applies the write in separate steps, so two racing conditional updates can both
succeed; on AWS exactly one does. The engine relies on that conditional write to run an
attempt at most once when Redis is lost, so DynamoDB requests are served one at a time.
SQS stays concurrent: a long poll must not hold up everything else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DYNAMODB_TARGET_PREFIX = "DynamoDB_"


class SerializedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time, everything else passes through."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET_PREFIX):
            return self._app(environ, start_response)
        with self._lock:
            # The body is produced lazily; build it under the lock so the write completes there.
            return list(self._app(environ, start_response))


class MotoServer:
    def __init__(self, host: str) -> None:
        app = SerializedDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(
            host, 0, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="moto-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
