"""Writes that DynamoDB applied while their answer was lost, as a timed-out call and
botocore's retry of it leave them: the retry loses the condition its first try satisfied."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from harness import Api, Downstream, Queues, Worker, http_task

from taskengine.engine import default_engine
from taskengine.errors import DependencyError

TASKS = "/v1/tasks"


def applied_then_retried(real: Callable[..., Any]) -> Callable[..., Any]:
    """The real call twice with the same arguments; the caller sees only the second answer."""

    def call(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        return real(*args, **kwargs)

    return call


def applied_then_timed_out(real: Callable[..., Any]) -> Callable[..., Any]:
    """The real call, then the error a read timeout after it becomes."""

    def call(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise DependencyError("dynamodb UpdateItem failed: ReadTimeoutError")

    return call


def test_a_submit_whose_create_was_retried_after_applying_is_a_new_task(
    api: Api, downstream: Downstream, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a create transaction that lands, then loses its retry's condition on its own key
    store = default_engine().store
    monkeypatch.setattr(store, "create", applied_then_retried(store.create))

    # When a task is submitted with a key
    response = api(
        "POST", TASKS, body=http_task(downstream.url("/x")), headers={"Idempotency-Key": "lost-1"}
    )

    # Then it is answered as created, and queued to run
    assert response.status == 202, response.text
    assert queues.total(queues.work_url) == 1


@pytest.mark.parametrize("fault", [applied_then_retried, applied_then_timed_out])
def test_a_claim_written_while_its_answer_was_lost_still_runs_the_attempt(
    api: Api,
    downstream: Downstream,
    worker: Worker,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> None:
    # Given a task, and a claim write that lands but whose answer is lost
    task_id = api("POST", TASKS, body=http_task(downstream.url("/claimed"))).json["task_id"]
    store = default_engine().store
    monkeypatch.setattr(
        store, "update_state_returning_old", fault(store.update_state_returning_old)
    )

    # When the worker takes the message
    worker.drain()

    # Then the attempt ran once and completed, instead of waiting out a lease nobody holds
    assert len(downstream.calls_to("/claimed")) == 1
    task = api("GET", f"{TASKS}/{task_id}").json
    assert task["status"] == "COMPLETED"
    assert [a["outcome"] for a in task["attempts"]] == ["succeeded"]
