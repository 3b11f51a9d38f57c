"""`taskengine`: developer commands. `taskengine dev` runs the whole engine on this machine."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from taskengine_local.echo_server import make_server
from taskengine_local.redis_server import LOOPBACK
from taskengine_local.stack import LocalStack, StackOptions

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """taskengine: run background tasks reliably."""


@app.command()
def dev(
    *,
    host: Annotated[str, typer.Option(help="Loopback address to serve the API on.")] = LOOPBACK,
    port: Annotated[int, typer.Option(help="API port; 0 picks a free one.")] = 8080,
    scheduler_interval: Annotated[
        float, typer.Option(help="Seconds between scheduler runs.", min=0.05)
    ] = 1.0,
    visibility_timeout: Annotated[
        int, typer.Option(help="Work queue visibility timeout in seconds.", min=1, max=43_200)
    ] = 30,
    redis_url: Annotated[
        str | None,
        typer.Option(envvar="REDIS_URL", help="Redis to use; an embedded one when unset."),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(help="Write the stack's endpoints here as JSON once it serves requests."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print the JSON logs and EMF metrics.")
    ] = False,
) -> None:
    """Run the engine locally: moto, the API, the worker and the scheduler."""
    out = Console()
    try:
        options = StackOptions(
            host=host,
            port=port,
            scheduler_interval_seconds=scheduler_interval,
            visibility_timeout_seconds=visibility_timeout,
            redis_url=redis_url or None,
            verbose=verbose,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error

    _require_free_port(host, port)
    stopping = _stop_on_signals()
    with out.status("starting the local stack"):
        stack = LocalStack(options, out=out).start()
    try:
        _announce(out, stack)
        if ready_file is not None:
            ready_file.write_text(json.dumps(stack.describe(), indent=2))
        stopping.wait()
        out.print("stopping…", highlight=False)
    finally:
        stack.stop()
    _exit_past_busy_handlers()


def _exit_past_busy_handlers() -> None:
    """Exit now even if a handler is still busy with a slow target.

    stop() waited a bounded time for the handlers; one still calling a target that does not
    answer is abandoned, as Lambda abandons an invocation at its timeout (its message returns
    to the queue). Python would otherwise wait for that thread, and the thread pools that run
    a batch's records, before the process could end.
    """
    if threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@app.command("echo-server")
def echo_server(
    *,
    port: Annotated[int, typer.Option(help="Port to listen on (loopback only).")] = 9000,
    status: Annotated[
        int, typer.Option(help="HTTP status to answer every request with.", min=100, max=599)
    ] = 503,
) -> None:
    """A downstream to try the engine against: answers every request with --status."""
    out = Console(soft_wrap=True)
    _require_free_port(LOOPBACK, port)
    server = make_server(LOOPBACK, port, status, out)
    out.print(f"answering {status} on http://{LOOPBACK}:{port}  (Ctrl-C stops)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        out.print("stopping…", highlight=False)
    finally:
        server.server_close()


def _require_free_port(host: str, port: int) -> None:
    """Fail fast with a plain message instead of a traceback after start-up."""
    if port == 0:
        return
    with socket.socket() as probe:
        # As the servers themselves do, so that connections still closing do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            Console(stderr=True, soft_wrap=True).print(
                f"[red]{host}:{port} is not available ({error.strerror}).[/] "
                "Is another taskengine running? Choose another port with --port.",
            )
            raise typer.Exit(code=2) from error


def _stop_on_signals() -> threading.Event:
    stopping = threading.Event()

    def _handle(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _handle)
    signal.signal(signal.SIGTERM, _handle)
    return stopping


def _announce(out: Console, stack: LocalStack) -> None:
    info = stack.describe()
    redis = "embedded" if info["redis_embedded"] else "external"
    out.print(f"[bold green]taskengine local stack ready[/]  ({redis} Redis {info['redis_url']})")
    out.print(f"  API      {info['api_url']}", highlight=False)
    out.print(f"  docs     {info['docs_url']}", highlight=False)
    out.print(f"  OpenAPI  {info['openapi_url']}", highlight=False)
    out.print(f"  AWS      {info['moto_url']}  (moto)", highlight=False)
    out.print("Ctrl-C stops.", style="dim")
