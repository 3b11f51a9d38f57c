"""What one task costs on AWS: every request the engine makes, counted, then priced.

Runs the real handlers in this process against the local stack's moto server (the same
resources the CDK stack creates), feeding the worker batches of ten as the SQS event source
mapping does, and counts each AWS request by service and operation. DynamoDB writes are
billed with their index writes: for every write to a task's STATE item the item is read
before and after (uncounted) and each global secondary index whose key appears, changes or
disappears is charged as DynamoDB bills it (1 write to add or remove an entry, 2 to move it,
1 to update a projected entry in place). Items here are under 1 KB, so one write is one WRU.

    .venv/bin/python benchmarks/cost_per_task.py [--tasks 50]

Lambda and API Gateway charges use the request counts and the stated durations; the
scheduler's per-minute run is a fixed cost, not a per-task one, and is left out.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import botocore.client
import redis

from taskengine import names
from taskengine_local import aws_constants
from taskengine_local.environment import handler_environment
from taskengine_local.lambda_context import LocalLambdaContext
from taskengine_local.moto_server import MotoServer
from taskengine_local.poller import to_sqs_record
from taskengine_local.resources import create_resources

RESULTS = Path(__file__).parent / "results" / "cost_per_task.json"

# us-east-1 list prices, December 2026.
PRICE = {
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "kms_request": 0.03 / 1e4,
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm": 0.0000133334,
    "http_api_request": 1.00 / 1e6,
}
# Assumed billed durations (arm64, 256 MB); the downstream's own latency adds to the worker's.
API_SECONDS = 0.05
WORKER_SECONDS_PER_BATCH = 0.15
MEMORY_GB = 0.25

DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}
INDEXES = (
    (names.DUE_INDEX_PK, names.DUE_INDEX_SK),
    (names.STATUS_INDEX_PK, names.STATUS_INDEX_SK),
)


class Downstream(BaseHTTPRequestHandler):
    """/ok/... answers 200; /flaky/<id> answers 503 twice, then 200; /broken/... 503."""

    calls: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.lock:
            self.calls[self.path] += 1
            seen = self.calls[self.path]
        failing = self.path.startswith("/broken") or (self.path.startswith("/flaky") and seen <= 2)
        self.send_response(503 if failing else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass
class Meter:
    """Counts AWS requests and DynamoDB capacity units made through botocore."""

    raw_dynamodb: Any
    requests: Counter[str]
    wru: float = 0.0
    rru: float = 0.0

    def __post_init__(self) -> None:
        # The worker runs a batch's records on threads; only the meter's own reads, on the
        # calling thread, go uncounted.
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def counting(self) -> bool:
        return not getattr(self._local, "paused", False)

    @contextmanager
    def paused(self) -> Iterator[None]:
        self._local.paused = True
        try:
            yield
        finally:
            self._local.paused = False

    def state_item(self, params: dict[str, Any]) -> dict[str, Any]:
        key = params.get("Key") or {
            names.PK: params["Item"][names.PK],
            names.SK: params["Item"][names.SK],
        }
        if key[names.SK]["S"] != "STATE":
            return {}
        item = self.raw_dynamodb.get_item(TableName=names.TABLE_NAME, Key=key).get("Item")
        return item or {}

    def index_writes(self, before: dict[str, Any], after: dict[str, Any]) -> int:
        writes = 0
        for pk, sk in INDEXES:
            old = (before.get(pk), before.get(sk)) if pk in before and sk in before else None
            new = (after.get(pk), after.get(sk)) if pk in after and sk in after else None
            if old is None and new is None:
                continue
            writes += 2 if old is not None and new is not None and old != new else 1
        return writes


def install_meter(meter: Meter) -> Callable[[], None]:
    original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if not meter.counting:
            return original(client, operation, params)
        service = client.meta.service_model.service_name
        with meter._lock:
            meter.requests[f"{service}:{operation}"] += 1
        if service != "dynamodb":
            return original(client, operation, params)

        writes = params.get("TransactItems") if operation == "TransactWriteItems" else [params]
        befores = []
        if operation in DYNAMODB_WRITES:
            with meter.paused():
                for write in writes or []:
                    transact = operation == "TransactWriteItems"
                    body = next(iter(write.values())) if transact else write
                    befores.append((body, meter.state_item(body)))
        result = original(client, operation, params)

        units = 0.0
        if operation in DYNAMODB_WRITES:
            factor = 2 if operation == "TransactWriteItems" else 1
            with meter.paused():
                for body, before in befores:
                    after = meter.state_item(body)
                    units += factor * (1 + meter.index_writes(before, after))
            with meter._lock:
                meter.wru += units
        elif operation in {"GetItem", "Query"}:
            read = 1.0 if params.get("ConsistentRead") else 0.5
            if operation == "Query":
                read *= max(1, int(result.get("Count", 0)))
            with meter._lock:
                meter.rru += read
        return result

    setattr(botocore.client.BaseClient, "_make_api_call", counted)  # noqa: B010
    return lambda: setattr(botocore.client.BaseClient, "_make_api_call", original)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_scenario(
    kind: str, tasks: int, use_key: bool, handlers: dict[str, Any], sqs: Any, work: tuple[str, str]
) -> dict[str, Any]:
    """Submit `tasks` tasks of one kind and run the worker until the queue is empty."""
    api, worker = handlers["api"], handlers["worker"]
    meter: Meter = handlers["meter"]
    meter.requests.clear()
    meter.wru = meter.rru = 0.0
    worker_batches = 0

    for index in range(tasks):
        body = {
            "target": {"type": "http", "url": f"{handlers['downstream']}/{kind}/{index}-{use_key}"},
            "retry": {"max_attempts": 3, "min_backoff_seconds": 0, "max_backoff_seconds": 0},
        }
        headers = {"content-type": "application/json"}
        if use_key:
            headers["idempotency-key"] = f"{kind}-{index}"
        event = {
            "version": "2.0",
            "rawPath": "/v1/tasks",
            "rawQueryString": "",
            "headers": headers,
            "body": json.dumps(body),
            "isBase64Encoded": False,
            "requestContext": {
                "http": {"method": "POST", "path": "/v1/tasks"},
                "stage": "$default",
                "requestId": f"cost-{index}",
            },
        }
        response = api(event, LocalLambdaContext("taskengine-api"))
        if response["statusCode"] != 202:
            raise SystemExit(f"submit failed: {response}")

    url, arn = work
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        worker_batches += 1
        event = {"Records": [to_sqs_record(message, arn) for message in messages]}
        result = worker(event, LocalLambdaContext("taskengine-worker", timeout_seconds=300))
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        done = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(messages)
            if m["MessageId"] not in failed
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=done)

    return price(kind, tasks, use_key, meter, worker_batches)


def price(kind: str, tasks: int, use_key: bool, meter: Meter, batches: int) -> dict[str, Any]:
    per_task = {name: count / tasks for name, count in sorted(meter.requests.items())}
    sqs_requests = sum(v for k, v in per_task.items() if k.startswith("sqs:"))
    kms_requests = sum(v for k, v in per_task.items() if k.startswith("kms:"))
    lambda_requests = 1 + batches / tasks
    lambda_seconds = API_SECONDS + WORKER_SECONDS_PER_BATCH * batches / tasks
    costs = {
        "dynamodb_writes": meter.wru / tasks * PRICE["dynamodb_wru"],
        "dynamodb_reads": meter.rru / tasks * PRICE["dynamodb_rru"],
        "sqs": sqs_requests * PRICE["sqs_request"],
        "kms": kms_requests * PRICE["kms_request"],
        "lambda": lambda_requests * PRICE["lambda_request"]
        + lambda_seconds * MEMORY_GB * PRICE["lambda_gb_second_arm"],
        "api_gateway": PRICE["http_api_request"],
    }
    return {
        "scenario": kind,
        "idempotency_key": use_key,
        "tasks": tasks,
        "requests_per_task": per_task,
        "dynamodb_wru_per_task": round(meter.wru / tasks, 2),
        "dynamodb_rru_per_task": round(meter.rru / tasks, 2),
        "worker_batches": batches,
        "usd_per_million_tasks": {k: round(v * 1e6, 2) for k, v in costs.items()},
        "usd_per_million_tasks_total": round(sum(costs.values()) * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    moto = MotoServer("127.0.0.1")
    moto.start()
    downstream = ThreadingHTTPServer(("127.0.0.1", 0), Downstream)
    threading.Thread(target=downstream.serve_forever, daemon=True).start()
    redis.Redis.from_url(args.redis_url).flushdb()
    resources = create_resources(moto.url, visibility_timeout_seconds=30)
    env = handler_environment(
        endpoint_url=moto.url,
        resources=resources,
        redis_url=args.redis_url,
        redispatch_after_seconds=300,
        dispatch_lookahead_seconds=90,
        local_functions={},
        verbose=False,
    )
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    # Every target here is one host; the circuit breaker would defer the failing scenarios'
    # attempts and price deferrals instead of attempts.
    env[f"{names.ENV_PREFIX}BREAKER_FAILURE_THRESHOLD"] = str(10**9)
    session = boto3.session.Session(
        aws_access_key_id=aws_constants.ACCESS_KEY,
        aws_secret_access_key=aws_constants.ACCESS_KEY,
        region_name=aws_constants.REGION,
    )
    sqs = session.client("sqs", endpoint_url=moto.url)
    meter = Meter(session.client("dynamodb", endpoint_url=moto.url), Counter())

    with environment(env):
        # The handlers read their settings at import, so they are imported once the
        # environment points them at this stack.
        from functions.api.handler import lambda_handler as api_handler  # noqa: PLC0415
        from functions.worker.handler import lambda_handler as worker_handler  # noqa: PLC0415

        handlers = {
            "api": api_handler,
            "worker": worker_handler,
            "meter": meter,
            "downstream": f"http://127.0.0.1:{downstream.server_address[1]}",
        }
        uninstall = install_meter(meter)
        # Metrics are off; Powertools still prints the ones it keeps once enough pile up.
        quiet = contextlib.redirect_stdout(io.StringIO())
        try:
            quiet.__enter__()
            work = (resources.work_queue_url, resources.work_queue_arn)
            results = [
                run_scenario("ok", args.tasks, False, handlers, sqs, work),
                run_scenario("ok", args.tasks, True, handlers, sqs, work),
                run_scenario("flaky", args.tasks, False, handlers, sqs, work),
                run_scenario("broken", args.tasks, False, handlers, sqs, work),
            ]
        finally:
            quiet.__exit__(None, None, None)
            uninstall()

    downstream.shutdown()
    moto.stop()
    report = {
        "prices_usd": PRICE,
        "assumptions": {
            "api_seconds": API_SECONDS,
            "worker_seconds_per_batch": WORKER_SECONDS_PER_BATCH,
            "memory_gb": MEMORY_GB,
        },
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for row in results:
        label = f"{row['scenario']}{' +key' if row['idempotency_key'] else ''}"
        print(
            f"{label:10} WRU {row['dynamodb_wru_per_task']:5}  RRU {row['dynamodb_rru_per_task']:5}"
            f"  ${row['usd_per_million_tasks_total']:6} per million tasks",
            file=sys.stdout,
        )


if __name__ == "__main__":
    main()
