"""End-to-end throughput of the local stack: submit over HTTP, run, retry, dead-letter.

Starts the local stack in this process and a fast loopback downstream, submits a mix of
tasks with bounded concurrency, waits until every task is terminal and reports counts,
downstream calls against the expected number, latencies and throughput.

    .venv/bin/python benchmarks/e2e_throughput.py [--tasks 200] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
from rich.console import Console

from taskengine_local.stack import LocalStack, StackOptions

RESULTS = Path(__file__).parent / "results" / "e2e_throughput.json"
RETRY = {"max_attempts": 3, "min_backoff_seconds": 0.1, "max_backoff_seconds": 1, "jitter": "none"}
# kind -> (share of tasks, downstream calls a task of that kind needs, expected final status)
MIX = {
    "ok": (0.6, 1, "COMPLETED"),
    "flaky": (0.25, 3, "COMPLETED"),
    "broken": (0.15, 3, "DEAD_LETTER"),
}
TERMINAL = {"COMPLETED", "DEAD_LETTER", "CANCELLED"}


class _Downstream(BaseHTTPRequestHandler):
    """/ok answers 200; /flaky/<n> answers 503 twice then 200; /broken always 503."""

    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    calls: ClassVar[Counter[str]] = Counter()
    # Calls per (task, idempotency key, attempt): more than one is a duplicate execution.
    executions: ClassVar[Counter[tuple[str, str, str]]] = Counter()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        execution = tuple(
            self.headers.get(name, "")
            for name in ("X-Task-Id", "Idempotency-Key", "X-Task-Attempt")
        )
        with self.lock:
            self.calls[self.path] += 1
            self.executions[execution] += 1  # type: ignore[index]
            seen = self.calls[self.path]
        kind = self.path.split("/")[1]
        status = 200 if kind == "ok" or (kind == "flaky" and seen > 2) else 503
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the counters are the record."""


@contextmanager
def downstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Downstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def plan(count: int, seed: int) -> list[str]:
    kinds = [kind for kind, (share, _, _) in MIX.items() for _ in range(round(count * share))]
    kinds = (kinds + ["ok"] * count)[:count]
    random.Random(seed).shuffle(kinds)
    return kinds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def submit_all(
    api: httpx.Client, base: str, kinds: list[str], concurrency: int
) -> list[tuple[str, str, float, float]]:
    """(task_id, kind, submitted_at, latency_seconds) per task."""

    def submit(index_kind: tuple[int, str]) -> tuple[str, str, float, float]:
        index, kind = index_kind
        path = f"/{kind}/{index}" if kind == "flaky" else f"/{kind}"
        body = {
            "target": {"type": "http", "url": base + path, "body": {"i": index}},
            "retry": RETRY,
        }
        started = time.time()
        response = api.post("/v1/tasks", json=body)
        response.raise_for_status()
        return response.json()["task_id"], kind, started, time.time() - started

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(submit, enumerate(kinds)))


def wait_terminal(api: httpx.Client, task_ids: list[str], deadline: float) -> dict[str, Any]:
    """Watch the status counts (one cheap request a second), then read every task once."""
    while time.monotonic() < deadline:
        counts = api.get("/v1/admin/stats").json()["counts"]
        if sum(counts.get(status, 0) for status in TERMINAL) >= len(task_ids):
            break
        time.sleep(1.0)
    tasks = {task_id: api.get(f"/v1/tasks/{task_id}").json() for task_id in task_ids}
    pending = [task_id for task_id, task in tasks.items() if task["status"] not in TERMINAL]
    if pending:
        sys.exit(f"{len(pending)} tasks not terminal before the deadline")
    return tasks


def measure(args: argparse.Namespace) -> dict[str, Any]:
    options = StackOptions(port=0, redis_url=args.redis_url)
    kinds = plan(args.tasks, args.seed)
    out = Console(file=args.log.open("w"), width=200) if args.log else Console(quiet=True)
    with (
        LocalStack(options, out=out) as stack,
        downstream() as base,
        httpx.Client(base_url=stack.api_url, timeout=30) as api,
    ):
        began = time.time()
        submitted = submit_all(api, base, kinds, args.concurrency)
        tasks = wait_terminal(api, [s[0] for s in submitted], time.monotonic() + args.timeout)
        wall = max(_finished(task) for task in tasks.values()) - began
    completes = [_finished(tasks[task_id]) - at for task_id, _, at, _ in submitted]
    unexpected = sum(tasks[task_id]["status"] != MIX[kind][2] for task_id, kind, _, _ in submitted)
    return {
        "tasks": args.tasks,
        "concurrency": args.concurrency,
        "mix": {kind: count for kind, count in sorted(Counter(kinds).items())},
        "redis": "external" if args.redis_url else "embedded",
        "outcomes_by_status": dict(sorted(Counter(t["status"] for t in tasks.values()).items())),
        "unexpected_final_status": unexpected,
        "downstream_calls": {
            "actual": sum(_Downstream.calls.values()),
            "expected": sum(MIX[kind][1] for kind in kinds),
            "duplicate_executions": sorted(
                "/".join(key) for key, count in _Downstream.executions.items() if count > 1
            ),
        },
        "wall_seconds": round(wall, 2),
        "submit_latency_ms": _quantiles([s[3] * 1000 for s in submitted]),
        "time_to_complete_ms": _quantiles([c * 1000 for c in completes]),
        "tasks_per_second": round(args.tasks / wall, 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def _finished(task: dict[str, Any]) -> float:
    return datetime.fromisoformat(task["updated_at"].replace("Z", "+00:00")).timestamp()


def _quantiles(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 0.5), 1), "p99": round(percentile(values, 0.99), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, choices=range(1, 2001), metavar="N")
    parser.add_argument("--concurrency", type=int, default=16, choices=range(1, 65), metavar="C")
    parser.add_argument("--timeout", type=float, default=300.0, help="ceiling, seconds")
    parser.add_argument("--redis-url", default=None, help="default: embedded fakeredis")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--log", type=Path, default=None, help="write the task transitions here")
    args = parser.parse_args()
    result = measure(args)
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
