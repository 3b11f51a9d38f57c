"""The developer commands: a clear error for a busy port, and the echo downstream."""

from __future__ import annotations

import io
import socket
import threading

import httpx
from rich.console import Console
from typer.testing import CliRunner

from taskengine_local.cli import app
from taskengine_local.echo_server import make_server


def test_dev_on_a_busy_port_fails_at_once_with_a_plain_message() -> None:
    # Given a port something else listens on
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        # When the local stack is asked to serve there
        result = CliRunner().invoke(app, ["dev", "--port", str(port)])

    # Then it stops before starting anything, saying what to do
    assert result.exit_code == 2
    assert "not available" in result.output
    assert "--port" in result.output


def test_the_echo_server_answers_its_status_and_never_prints_secret_values() -> None:
    # Given an echo downstream answering 503
    out = io.StringIO()
    server = make_server("127.0.0.1", 0, 503, Console(file=out, soft_wrap=True))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    # When the engine-like request with a secret header arrives
    try:
        response = httpx.post(
            url, json={"a": 1}, headers={"Authorization": "Bearer s3cret", "X-Task-Attempt": "2"}
        )
    finally:
        server.shutdown()
        server.server_close()

    # Then it answers 503 and logs the task headers and the secret header's name only
    assert response.status_code == 503
    line = out.getvalue()
    assert "POST /hook -> 503" in line
    assert "X-Task-Attempt=2" in line
    assert "Authorization" in line
    assert "s3cret" not in line
