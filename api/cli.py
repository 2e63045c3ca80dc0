"""``jobqueue``: serve, worker, run, submit, validate, db upgrade, jobs, demo."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from engine import Engine, JobInvalid

from . import cli_local, cli_remote
from .settings import Settings

app = typer.Typer(
    help="JobQueue: HTTP API calls as persisted, monitored jobs (validated DAGs of HTTP tasks).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    epilog="Example: jobqueue run examples/workflows/fan_out_fan_in.yaml "
    "--param base_url=http://127.0.0.1:8001",
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
jobs_app = typer.Typer(help="Inspect and control jobs on a running server.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")

console = Console(stderr=False)
err = Console(stderr=True)

ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Set params.KEY (repeatable): --param query=dogs"),
]
ServerOpt = Annotated[
    str, typer.Option("--server", "-s", envvar="JOBQUEUE_SERVER", help="Base URL of the server")
]
DEFAULT_SERVER = "http://127.0.0.1:8000"


def _params(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param expects KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _run_async(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
) -> None:
    """Start the REST API (and, unless JOBQUEUE_EMBEDDED_WORKER=false, a worker in it).

    Example: jobqueue serve --port 8000
    """
    import uvicorn

    from .main import create_app

    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit once nothing is queued or running")] = False,
) -> None:
    """Run a worker only (scale-out: several of them share JOBQUEUE_DB_URL).

    SIGTERM stops claiming, lets running calls finish for JOBQUEUE_SHUTDOWN_GRACE seconds, then
    hands the rest back to the queue. Example: JOBQUEUE_CONCURRENCY=32 jobqueue worker
    """
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(message)s")

    async def main() -> None:
        engine = await Engine.open(settings.engine_config())
        try:
            runner = engine.worker()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runner.stop)
            await runner.run(burst=burst)
            if runner.failure is not None:
                err.print(f"[red]worker failed[/red] {runner.failure}")
                raise typer.Exit(1)
        finally:
            await engine.close()

    _run_async(main())


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file", exists=True, dir_okay=False)],
    param: ParamOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result document")] = False,
) -> None:
    """Validate and run a workflow locally on the embedded database, with a live task table.

    Exit code 0 only if the job succeeded. Example: jobqueue run wf.yaml --param query=dogs
    """
    code = _run_async(
        cli_local.run_workflow(file, _params(param), Settings(), as_json=as_json, console=console)
    )
    raise typer.Exit(code)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file", exists=True, dir_okay=False)],
    param: ParamOpt = None,
) -> None:
    """Report every creation-time problem of a workflow file, with line and column.

    Exit code 1 when invalid. Example: jobqueue validate examples/workflows/fan_out_fan_in.yaml
    """
    raise typer.Exit(_run_async(cli_local.validate_file(file, _params(param), Settings(), console)))


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file", exists=True, dir_okay=False)],
    server: ServerOpt = DEFAULT_SERVER,
    wait: Annotated[bool, typer.Option(help="Follow the job to its end")] = False,
    param: ParamOpt = None,
) -> None:
    """Send a workflow to a running server (POST /api/v1/jobs).

    Example: jobqueue submit wf.yaml --server http://127.0.0.1:8000 --wait
    """
    try:
        code = cli_remote.submit(file, _params(param), server, wait=wait, console=console)
    except JobInvalid as exc:
        cli_local.print_report(console, exc, None, str(file))
        code = 1
    except (cli_remote.ServerError, OSError, httpx.TransportError) as exc:
        err.print(f"[red]error[/red] {exc}")
        code = 2
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to JOBQUEUE_DB_URL. Example: jobqueue db upgrade"""

    async def main() -> None:
        engine = await Engine.open(Settings().engine_config(), migrate=True)
        await engine.close()

    _run_async(main())
    console.print("database schema is up to date")


def _remote(server: str, method: str, path: str) -> None:
    try:
        with cli_remote.client(server) as http:
            data = cli_remote.call(http, method, path)
    except cli_remote.ServerError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    except (OSError, httpx.TransportError) as exc:
        err.print(f"[red]error[/red] cannot reach {server}: {exc}")
        raise typer.Exit(2) from None
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@jobs_app.command("list")
def jobs_list(
    server: ServerOpt = DEFAULT_SERVER,
    status: Annotated[str | None, typer.Option(help="Filter by status")] = None,
    limit: Annotated[int, typer.Option(help="How many")] = 20,
) -> None:
    """List jobs, newest first. Example: jobqueue jobs list --status failed"""
    query = f"/jobs?limit={limit}" + (f"&status={status}" if status else "")
    _remote(server, "GET", query)


@jobs_app.command("show")
def jobs_show(job_id: str, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Job detail with its tasks. Example: jobqueue jobs show j_01J..."""
    _remote(server, "GET", f"/jobs/{job_id}")


@jobs_app.command("result")
def jobs_result(job_id: str, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Every task's response. Example: jobqueue jobs result j_01J..."""
    _remote(server, "GET", f"/jobs/{job_id}/result")


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Cancel a job; running calls are interrupted. Example: jobqueue jobs cancel j_01J..."""
    _remote(server, "POST", f"/jobs/{job_id}/cancel")


@jobs_app.command("retry")
def jobs_retry(job_id: str, server: ServerOpt = DEFAULT_SERVER) -> None:
    """Re-run the failed/skipped/canceled tasks of a job. Example: jobqueue jobs retry j_01J..."""
    _remote(server, "POST", f"/jobs/{job_id}/retry")


@app.command()
def demo(
    workflow: Annotated[Path, typer.Argument(help="Workflow to run against the demo API")] = Path(
        "examples/workflows/search_enrich_notify.yaml"
    ),
    port: Annotated[int, typer.Option(help="Port of the demo API")] = 8001,
) -> None:
    """Start the local demo API and run a real multi-task workflow against it, end to end.

    Private-network targets are allowed for this command only (the demo API is on 127.0.0.1).
    Example: jobqueue demo
    """
    from .demo import run_demo

    raise typer.Exit(run_demo(workflow, port, console))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
