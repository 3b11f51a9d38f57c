"""Target behaviours end to end: a local `lambda` target and an honoured Retry-After."""

from __future__ import annotations

from datetime import datetime

import pytest

from e2e.client import QUICK_RETRY, TaskApi, http_task
from e2e.downstream import Downstream, Reply

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _lambda_task(function_name: str) -> dict[str, object]:
    return {
        "target": {"type": "lambda", "function_name": function_name, "payload": {"x": 1}},
        "retry": {**QUICK_RETRY, "max_attempts": 2},
    }


def _at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def test_a_lambda_target_runs_the_local_sample_function(api: TaskApi) -> None:
    # Given / When a task for the local `echo` function runs
    task = api.wait_for(api.submit(_lambda_task("echo"))["task_id"])

    # Then it completed on its first attempt
    assert task["status"] == "COMPLETED"
    assert [a["outcome"] for a in task["attempts"]] == ["succeeded"]


def test_a_failing_lambda_function_is_retried_then_dead_lettered(api: TaskApi) -> None:
    # Given / When a task for the local `fail` function runs
    task = api.wait_for(api.submit(_lambda_task("fail"))["task_id"])

    # Then every attempt was a retryable function error and the task is dead-lettered
    assert task["status"] == "DEAD_LETTER"
    assert [a["outcome"] for a in task["attempts"]] == ["retryable_failure"] * 2
    assert "SampleFunctionError" in (task["last_error"] or "")


def test_retry_after_postpones_the_next_attempt(
    api: TaskApi, downstream: Downstream, path: str
) -> None:
    # Given a downstream that throttles with Retry-After: 2 once, under a 0.1 s backoff
    url = downstream.script(path, Reply(429, {"Retry-After": "2"}), Reply(200))
    retry = {**QUICK_RETRY, "max_backoff_seconds": 10}

    # When the task runs to the end
    task = api.wait_for(api.submit(http_task(url, retry=retry))["task_id"])

    # Then the second attempt started no earlier than two seconds after the first
    assert task["status"] == "COMPLETED"
    first, second = task["attempts"]
    assert (_at(second["started_at"]) - _at(first["started_at"])).total_seconds() >= 2
    calls = downstream.calls(path)
    assert calls[1].received_at - calls[0].received_at >= 2
