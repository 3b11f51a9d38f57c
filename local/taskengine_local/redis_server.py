"""The Redis the local stack uses: the one at REDIS_URL, else an embedded fakeredis server."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import fakeredis

LOOPBACK = "127.0.0.1"


@dataclass
class RedisEndpoint:
    url: str
    embedded: bool
    _server: fakeredis.TcpFakeServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()


def open_redis(redis_url: str | None) -> RedisEndpoint:
    if redis_url:
        return RedisEndpoint(url=redis_url, embedded=False)
    server = fakeredis.TcpFakeServer((LOOPBACK, 0), server_type="redis")
    # Without daemon threads an idle client connection keeps the process alive at exit.
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="embedded-redis", daemon=True)
    thread.start()
    port = server.server_address[1]
    return RedisEndpoint(
        url=f"redis://{LOOPBACK}:{port}/0", embedded=True, _server=server, _thread=thread
    )
