"""The per-host circuit breaker defers attempts against a failing host instead of spending them.

The engines here get a generous Redis timeout: the breaker fails open on a slow Redis, which is
right in production and would make these tests depend on the machine's load.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from harness import Api, Downstream, Queues, Reply, Worker, http_task

from taskengine.models import WorkMessage
from taskengine.runner import AttemptRunner, RunResult

TASKS = "/v1/tasks"


def submit_and_take(api: Api, worker: Worker, body: dict[str, Any]) -> WorkMessage:
    response = api("POST", TASKS, body=body)
    assert response.status == 202, response.text
    [message] = worker.receive()
    worker.delete(message)
    return WorkMessage.model_validate_json(message["Body"])


def test_attempts_against_a_host_that_keeps_failing_are_deferred_not_spent(
    api: Api, downstream: Downstream, worker: Worker, make_engine: Any
) -> None:
    # Given a breaker that opens after two failures, and a host that always answers 503
    engine = make_engine(
        breaker_failure_threshold=2, breaker_open_seconds=60, redis_timeout_seconds=5
    )
    url = downstream.script("/down", Reply(503))
    body = http_task(url, retry={"max_attempts": 5})
    first, second, third = (submit_and_take(api, worker, body) for _ in range(3))
    runner = AttemptRunner(engine)

    # When three attempts come in, the first two failing
    assert runner.run(first, 60) is RunResult.EXECUTED
    assert runner.run(second, 60) is RunResult.EXECUTED
    outcome = runner.run(third, 60)

    # Then the third is deferred: the host is not called, the attempt is not counted,
    # and it is scheduled after the circuit's cool-down
    assert outcome is RunResult.DEFERRED
    assert len(downstream.calls_to("/down")) == 2
    task = api("GET", f"{TASKS}/{third.task_id}").json
    assert task["status"] == "RETRY_SCHEDULED"
    assert task["attempt_count"] == 0
    assert task["attempts"] == []
    next_at = datetime.fromisoformat(task["next_attempt_at"])
    assert next_at - datetime.fromisoformat(task["updated_at"]) >= timedelta(seconds=59)


def test_a_deferred_attempt_is_sent_again_for_when_the_circuit_closes(
    api: Api, downstream: Downstream, worker: Worker, queues: Queues, make_engine: Any
) -> None:
    # Given an open circuit for a host
    engine = make_engine(
        breaker_failure_threshold=1, breaker_open_seconds=60, redis_timeout_seconds=5
    )
    url = downstream.script("/down", Reply(503))
    body = http_task(url, retry={"max_attempts": 5})
    first, second = (submit_and_take(api, worker, body) for _ in range(2))
    runner = AttemptRunner(engine)
    runner.run(first, 60)

    # When an attempt is deferred
    assert runner.run(second, 60) is RunResult.DEFERRED

    # Then its message is back on the queue, delayed (the failed first task's immediate
    # retry is the only visible one)
    counts = queues.counts(queues.work_url)
    assert counts["delayed"] == 1
    assert counts["visible"] == 1


def test_a_deferred_attempt_runs_once_the_circuit_closes(
    api: Api, downstream: Downstream, worker: Worker, make_engine: Any, redis_client: Any
) -> None:
    # Given an attempt deferred by an open circuit
    engine = make_engine(
        breaker_failure_threshold=1, breaker_open_seconds=60, redis_timeout_seconds=5
    )
    url = downstream.script("/flap", Reply(503), Reply(200))
    body = http_task(url, retry={"max_attempts": 5})
    first, second = (submit_and_take(api, worker, body) for _ in range(2))
    runner = AttemptRunner(engine)
    runner.run(first, 60)
    assert runner.run(second, 60) is RunResult.DEFERRED

    # When the circuit has closed and the deferred attempt's message arrives when it is due
    for key in redis_client.scan_iter("te:breaker:*"):
        redis_client.delete(key)
    engine.clock = lambda: datetime.now(UTC) + timedelta(seconds=62)
    outcome = runner.run(second, 60)

    # Then it runs: its own earlier claim does not count as a duplicate
    assert outcome is RunResult.EXECUTED
    assert api("GET", f"{TASKS}/{second.task_id}").json["status"] == "COMPLETED"


def test_rate_limited_answers_do_not_open_the_circuit(
    api: Api, downstream: Downstream, worker: Worker, make_engine: Any
) -> None:
    # Given a breaker that opens after one failure, and a host that answers 429
    engine = make_engine(
        breaker_failure_threshold=1, breaker_open_seconds=60, redis_timeout_seconds=5
    )
    url = downstream.script("/busy", Reply(429))
    body = http_task(url, retry={"max_attempts": 5})
    first, second = (submit_and_take(api, worker, body) for _ in range(2))
    runner = AttemptRunner(engine)

    # When two attempts are answered 429
    results = [runner.run(first, 60), runner.run(second, 60)]

    # Then both ran: pacing is left to Retry-After and the backoff
    assert results == [RunResult.EXECUTED, RunResult.EXECUTED]
    assert len(downstream.calls_to("/busy")) == 2
