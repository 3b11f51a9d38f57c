"""The scheduler re-sends lost messages, but not into a backlog, and poisons only when idle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from harness import Api, Clock, Downstream, Queues, Worker, http_task

from taskengine.dispatcher import Dispatcher

TASKS = "/v1/tasks"
REDISPATCH = timedelta(seconds=120)  # the harness's TASKENGINE_REDISPATCH_AFTER_SECONDS


def submit(api: Api, downstream: Downstream) -> str:
    response = api("POST", TASKS, body=http_task(downstream.url("/x")))
    assert response.status == 202, response.text
    return response.json["task_id"]  # type: ignore[no-any-return]


def test_a_sent_task_is_not_sent_again_into_a_backlog(
    api: Api, downstream: Downstream, queues: Queues, make_engine: Any
) -> None:
    # Given a task whose message still waits in the queue, past its redispatch time
    task_id = submit(api, downstream)
    clock = Clock(datetime.now(UTC) + REDISPATCH + timedelta(seconds=5))
    engine = make_engine(clock=clock)

    # When the scheduler runs
    report = Dispatcher(engine).run_once()

    # Then nothing is sent again, nothing is counted, and the task is looked at later
    assert report.dispatched == 0
    assert queues.counts(queues.work_url)["visible"] == 1
    state = engine.store.get_state(task_id)
    assert state.dispatch_count == 1
    assert Dispatcher(engine).run_once().skipped == 0


def test_a_task_long_overdue_behind_a_backlog_is_sent_again_without_counting(
    api: Api, downstream: Downstream, queues: Queues, make_engine: Any
) -> None:
    # Given a task sent long ago while the queue still holds messages
    task_id = submit(api, downstream)
    engine = make_engine(clock=Clock(datetime.now(UTC) + REDISPATCH * 4))

    # When the scheduler runs
    report = Dispatcher(engine).run_once()

    # Then it is sent again, but the send does not count towards poison
    assert report.dispatched == 1
    assert queues.counts(queues.work_url)["visible"] == 2
    assert engine.store.get_state(task_id).dispatch_count == 1


def test_a_task_sent_again_and_again_without_running_is_dead_lettered_as_poison(
    api: Api, downstream: Downstream, queues: Queues, worker: Worker, make_engine: Any
) -> None:
    # Given a task whose every message is lost before a worker claims it
    task_id = submit(api, downstream)
    clock = Clock(datetime.now(UTC))
    engine = make_engine(clock=clock)

    # When the scheduler re-sends it, with the queue empty each time, until it gives up
    statuses = []
    for _ in range(6):
        for message in worker.receive():
            worker.delete(message)
        clock.now += REDISPATCH + timedelta(seconds=5)
        Dispatcher(engine).run_once()
        statuses.append(api("GET", f"{TASKS}/{task_id}").json["status"])

    # Then after max_dispatches sends it is dead-lettered as poison, with a dead letter
    assert statuses[-1] == "DEAD_LETTER"
    task = api("GET", f"{TASKS}/{task_id}").json
    assert task["last_error"].startswith("poison")
    assert [letter["task_id"] for letter in queues.dead_letters()] == [task_id]
