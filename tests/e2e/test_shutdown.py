"""Stopping the local stack while a handler waits on a target that never answers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def test_the_stack_stops_promptly_while_an_attempt_hangs(tmp_path: Path) -> None:
    # Given a running stack whose worker is in the middle of a call nobody answers
    ready = tmp_path / "ready.json"
    command = [sys.executable, "-m", "taskengine_local", "dev", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text()):
            assert process.poll() is None, "the stack exited before it was ready"
            assert time.monotonic() < deadline, "the stack did not get ready"
            time.sleep(0.1)
        api_url = json.loads(ready.read_text())["api_url"]
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)  # connections queue up; nothing ever answers them
            target = f"http://127.0.0.1:{silent.getsockname()[1]}/hang"
            body = {"target": {"type": "http", "url": target, "timeout_seconds": 120}}
            assert httpx.post(f"{api_url}/v1/tasks", json=body).status_code == 202
            time.sleep(2)

            # When it is told to stop
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=40)

        # Then it exits cleanly without waiting for the call to time out
        assert returncode == 0
        # (the handler gets about 25 s for the call; stop waits 10 s for handlers)
        assert time.monotonic() - started < 20
    finally:
        if process.poll() is None:
            process.kill()
