"""End-to-end fixtures: the local stack as `taskengine dev` runs it, and a scripted downstream.

The stack runs in a child process: its handlers read their configuration from the process
environment and keep module state, which must not leak into other tests of the same worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from e2e.client import TaskApi
from e2e.downstream import Downstream, serve_downstream

# A Redis database of the tests' own, so flushing it never touches anyone else's data.
E2E_REDIS_URL = "redis://127.0.0.1:6379/13"
STARTUP_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class RunningStack:
    api_url: str
    moto_url: str
    redis_url: str
    redis_embedded: bool
    work_queue_url: str
    dead_letter_queue_url: str
    log_path: Path


def _real_redis_available() -> bool:
    try:
        client = redis.Redis.from_url(E2E_REDIS_URL, socket_connect_timeout=0.5)
        return bool(client.ping())
    except redis.RedisError:
        return False


def _wait_until_ready(process: subprocess.Popen[bytes], ready_file: Path, log: Path) -> Any:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if ready_file.exists() and ready_file.stat().st_size:
            return json.loads(ready_file.read_text())
        if process.poll() is not None:
            pytest.fail(f"taskengine dev exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"taskengine dev not ready in {STARTUP_TIMEOUT_SECONDS}s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    workdir = tmp_path_factory.mktemp("local-stack")
    ready_file, log_path = workdir / "ready.json", workdir / "stack.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.pop("REDIS_URL", None)
    if _real_redis_available():
        redis.Redis.from_url(E2E_REDIS_URL).flushdb()
        env["REDIS_URL"] = E2E_REDIS_URL
    command = [sys.executable, "-m", "taskengine_local", "dev", "--port", "0"]
    command += ["--scheduler-interval", "0.5", "--ready-file", str(ready_file)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    info = _wait_until_ready(process, ready_file, log_path)
    yield RunningStack(
        api_url=info["api_url"],
        moto_url=info["moto_url"],
        redis_url=info["redis_url"],
        redis_embedded=info["redis_embedded"],
        work_queue_url=info["work_queue_url"],
        dead_letter_queue_url=info["dead_letter_queue_url"],
        log_path=log_path,
    )
    process.send_signal(signal.SIGTERM)
    try:
        returncode = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"taskengine dev ignored SIGTERM for 30 s:\n{log_path.read_text()[-3000:]}")
    assert returncode == 0, log_path.read_text()[-3000:]


@pytest.fixture(scope="session")
def downstream() -> Iterator[Downstream]:
    with serve_downstream() as server:
        yield server


@pytest.fixture
def api(stack: RunningStack) -> Iterator[TaskApi]:
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        yield TaskApi(client)


@pytest.fixture
def path() -> str:
    """A downstream path of this test's own, so calls of different tests never mix."""
    return f"/hook/{uuid.uuid4().hex}"
