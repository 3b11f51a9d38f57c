"""`taskengine`: developer commands. `taskengine dev` runs the whole engine on this machine."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

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
