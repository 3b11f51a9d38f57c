"""The whole engine in one process: moto server, API Gateway stand-in, SQS pollers, timer."""

from __future__ import annotations

import importlib
import ipaddress
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar, cast

import boto3
from rich.console import Console

from taskengine_local import aws_constants, console
from taskengine_local.apigw import ApiGatewayServer, LambdaHandler
from taskengine_local.environment import handler_environment
from taskengine_local.moto_server import MotoServer
from taskengine_local.poller import SqsPoller
from taskengine_local.redis_server import LOOPBACK, RedisEndpoint, open_redis
from taskengine_local.resources import Resources, create_resources
from taskengine_local.samples import SAMPLE_FUNCTIONS
from taskengine_local.scheduler import SchedulerTimer

API_HANDLER = "functions.api.handler"
WORKER_HANDLER = "functions.worker.handler"
SCHEDULER_HANDLER = "functions.scheduler.handler"

# How long stop() waits for the pollers and the timer to finish what they are running.
STOP_TIMEOUT_SECONDS = 10.0

_T = TypeVar("_T")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackOptions:
    host: str = LOOPBACK
    port: int = 8080
    scheduler_interval_seconds: float = 1.0
    visibility_timeout_seconds: int = 30
    # Local tasks are short; a lost dispatch is retried after seconds, not the deployed minutes.
    redispatch_after_seconds: int = 10
    # Must stay below redispatch_after_seconds: the scheduler re-sends a dispatched task as
    # soon as its redispatch time falls within the lookahead, so a longer lookahead re-sends
    # every fresh message at once and poisons tasks that wait for a retry.
    dispatch_lookahead_seconds: int = 5
    # None runs an embedded fakeredis server.
    redis_url: str | None = None
    pollers: int = 2
    verbose: bool = False
    local_functions: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(SAMPLE_FUNCTIONS)
    )

    def __post_init__(self) -> None:
        if not is_loopback(self.host):
            raise ValueError(f"the local stack binds loopback addresses only, not {self.host!r}")
        if self.scheduler_interval_seconds <= 0:
            raise ValueError("scheduler_interval_seconds must be positive")
        if not 0 <= self.visibility_timeout_seconds <= 43_200:
            raise ValueError("visibility_timeout_seconds must be within 0..43200 (an SQS limit)")
        if not 1 <= self.dispatch_lookahead_seconds < self.redispatch_after_seconds:
            raise ValueError("dispatch_lookahead_seconds must be below redispatch_after_seconds")
        if self.pollers < 1:
            raise ValueError("at least one poller is needed")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LocalStack:
    """Start, use, stop. The handlers read their configuration from os.environ, so one stack
    per process: start() sets the environment before it imports them, stop() restores it."""

    def __init__(self, options: StackOptions | None = None, *, out: Console | None = None) -> None:
        self.options = options or StackOptions()
        self._console = out or Console()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._moto: MotoServer | None = None
        self._redis: RedisEndpoint | None = None
        self._api: ApiGatewayServer | None = None
        self._resources: Resources | None = None
        self._saved_environ: dict[str, str] | None = None
        self._log_handler: console.ConsoleHandler | None = None

    @property
    def api_url(self) -> str:
        return self._require(self._api).url

    @property
    def moto_url(self) -> str:
        return self._require(self._moto).url

    @property
    def resources(self) -> Resources:
        return self._require(self._resources)

    @property
    def redis(self) -> RedisEndpoint:
        return self._require(self._redis)

    def describe(self) -> dict[str, Any]:
        """Where everything is, for people and for tools waiting on a ready stack."""
        return {
            "api_url": self.api_url,
            "docs_url": f"{self.api_url}/docs",
            "openapi_url": f"{self.api_url}/openapi.json",
            "moto_url": self.moto_url,
            "redis_url": self.redis.url,
            "redis_embedded": self.redis.embedded,
            "table_name": self.resources.table_name,
            "work_queue_url": self.resources.work_queue_url,
            "dead_letter_queue_url": self.resources.dead_letter_queue_url,
            "header_key_id": self.resources.header_key_id,
        }

    def start(self) -> LocalStack:
        try:
            self._start_backends()
            api, worker, scheduler = self._load_handlers()
            self._start_runtime(api, worker, scheduler)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._api is not None:
            self._api.stop()
        self._join_runtime()
        if self._redis is not None:
            self._redis.close()
        if self._moto is not None:
            self._moto.stop()
        if self._log_handler is not None:
            console.uninstall(self._log_handler)
        if self._saved_environ is not None:
            os.environ.clear()
            os.environ.update(self._saved_environ)
            self._saved_environ = None

    def _join_runtime(self) -> None:
        # A handler stuck on a slow target must not hold the whole stack up: like Lambda at
        # the end of its timeout, it is abandoned, and its message returns to the queue.
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        busy = [thread.name for thread in self._threads if thread.is_alive()]
        if busy:
            logger.warning("abandoned at shutdown, still busy: %s", ", ".join(busy))

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_backends(self) -> None:
        console.quiet_moto(verbose=self.options.verbose)
        self._moto = MotoServer(LOOPBACK)
        self._moto.start()
        self._resources = create_resources(
            self.moto_url, visibility_timeout_seconds=self.options.visibility_timeout_seconds
        )
        self._redis = open_redis(self.options.redis_url)
        self._saved_environ = dict(os.environ)
        os.environ.update(
            handler_environment(
                endpoint_url=self.moto_url,
                resources=self._resources,
                redis_url=self._redis.url,
                redispatch_after_seconds=self.options.redispatch_after_seconds,
                dispatch_lookahead_seconds=self.options.dispatch_lookahead_seconds,
                local_functions=self.options.local_functions,
                verbose=self.options.verbose,
            )
        )

    def _load_handlers(self) -> tuple[LambdaHandler, LambdaHandler, LambdaHandler]:
        if not self.options.verbose:
            # Emitted on every invocation that records no metric; noise on a dev console.
            warnings.filterwarnings("ignore", message="No application metrics to publish")
        handlers = tuple(
            self._quiet(cast(LambdaHandler, importlib.import_module(module).lambda_handler))
            for module in (API_HANDLER, WORKER_HANDLER, SCHEDULER_HANDLER)
        )
        self._log_handler = console.install(self._console, verbose=self.options.verbose)
        return handlers[0], handlers[1], handlers[2]

    def _quiet(self, handler: LambdaHandler) -> LambdaHandler:
        if self.options.verbose:
            return handler

        def invoke(event: dict[str, Any], context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                console.discard_metrics()

        return invoke

    def _start_runtime(
        self, api: LambdaHandler, worker: LambdaHandler, scheduler: LambdaHandler
    ) -> None:
        self._api = ApiGatewayServer(api, host=self.options.host, port=self.options.port)
        self._api.start()
        for index in range(self.options.pollers):
            self._spawn(f"sqs-poller-{index}", self._poller(worker).run)
        timer = SchedulerTimer(scheduler, interval_seconds=self.options.scheduler_interval_seconds)
        self._spawn("scheduler-timer", timer.run)

    def _poller(self, worker: LambdaHandler) -> SqsPoller:
        sqs = boto3.client(
            "sqs",
            endpoint_url=self.moto_url,
            region_name=aws_constants.REGION,
            aws_access_key_id=aws_constants.ACCESS_KEY,
            aws_secret_access_key=aws_constants.ACCESS_KEY,
        )
        return SqsPoller(
            sqs,
            queue_url=self.resources.work_queue_url,
            queue_arn=self.resources.work_queue_arn,
            handler=worker,
            # The function must finish within the visibility timeout or SQS hands the
            # message to another poller while it still runs.
            function_timeout_seconds=max(1, self.options.visibility_timeout_seconds),
        )

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @staticmethod
    def _require(value: _T | None) -> _T:
        if value is None:
            raise RuntimeError("the local stack is not running; call start() first")
        return value
