"""``jobqueue``: serve, worker, run, submit, validate, db upgrade, jobs, workflows, schedules,
demo.

Every failure a user can fix is printed as ``error: ...`` lines (with the fix) and an exit code:
1 for a job or an answer that says no (invalid, failed, 404, 409), 2 for a bad setting, an
unreachable database or server, or a usage error, 130 after Ctrl-C. ``--verbose`` adds the
traceback. Heavy imports (the engine's store, uvicorn, the app) happen in the commands that
need them, so ``--help`` and the server commands start quickly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shlex
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup
from typer.exceptions import TyperException

from api import cli_schedules, cli_secrets
from api.cli_callbacks import callbacks_app
from api.cli_keys import keys_app
from api.cli_local import CliError, load_settings, open_engine, print_error, print_report
from api.cli_remote import connect
from api.cli_workflows import workflows_app
from api.logs import configure_logging
from engine import JobInvalid, JobStatus
from jobqueue_client import JobQueue

if TYPE_CHECKING:
    import uvicorn

console = Console(stderr=False)
err = Console(stderr=True)
#: set by the ``--verbose`` option on every invocation
_options = {"verbose": False}


class _Commands(TyperGroup):
    """The command group: turns what a command raises into error lines and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors click)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException):  # exit codes and usage errors
            raise
        except BrokenPipeError:  # the reader went away (| head): click leaves quietly
            raise
        except CliError as exc:
            _fail(exc, exc)

        except KeyboardInterrupt as exc:
            _fail(CliError("interrupted", code=130), exc)
        except Exception as exc:
            _fail(
                CliError(
                    f"{type(exc).__name__}: {exc}",
                    "unexpected: run again with --verbose for the traceback, and report it",
                    code=1,
                ),
                exc,
            )


def _fail(error: CliError, exc: BaseException) -> None:
    if _options["verbose"]:
        traceback.print_exception(exc, file=sys.stderr)
    print_error(err, error)
    raise typer.Exit(error.code) from None


def _doc(*paragraphs: str) -> str:
    """A command's --help text: paragraphs, the last one an example."""
    return "\n\n".join(paragraphs)


app = typer.Typer(
    cls=_Commands,
    help="JobQueue: HTTP API calls as persisted, monitored jobs (validated DAGs of HTTP tasks).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    epilog="Example: jobqueue demo; then, with the demo API on 127.0.0.1:8001: "
    "JOBQUEUE_ALLOW_PRIVATE_NETWORKS=true jobqueue run examples/workflows/fan_out_fan_in.yaml",
)
db_app = typer.Typer(
    help="Database schema management.", epilog="Example: jobqueue db upgrade", no_args_is_help=True
)
jobs_app = typer.Typer(
    help="Inspect and control jobs on a running server (--server URL or JOBQUEUE_SERVER).",
    epilog="Example: jobqueue jobs list --server http://127.0.0.1:8000",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(workflows_app, name="workflows")
app.add_typer(cli_schedules.app, name="schedules")
app.add_typer(keys_app, name="keys")
cli_secrets.register(keys_app)
app.add_typer(callbacks_app, name="callbacks")


@app.callback()
def _global_options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the traceback of an error")
    ] = False,
) -> None:
    _options["verbose"] = verbose


ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Set params.KEY (repeatable): --param query=dogs"),
]
ServerOpt = Annotated[
    str, typer.Option("--server", "-s", envvar="JOBQUEUE_SERVER", help="Base URL of the server")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's JSON document")]
BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker-url",
        help="redis://... or amqp://...: carry wake-ups and cancels between processes over "
        "this broker (default: JOBQUEUE_BROKER_URL)",
    ),
]


def _broker_override(broker_url: str | None) -> dict[str, Any]:
    return {} if broker_url is None else {"broker_url": broker_url}


FileArg = Annotated[
    Path, typer.Argument(help="Workflow YAML file", exists=True, dir_okay=False, readable=True)
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


def _end_streams_on_exit(server: uvicorn.Server, web: Any) -> uvicorn.Server:
    """Make ``server`` end the open event streams of ``web`` (its app) as soon as it is told
    to stop.

    uvicorn waits for open responses before it shuts the app down, and an event stream lasts
    until its job ends: without this, a dashboard left open would hold a SIGTERM for
    ``timeout_graceful_shutdown``. Clients reconnect with their last event id.
    """
    stop = server.handle_exit

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        engine = getattr(web.state, "engine", None)
        loop = getattr(web.state, "loop", None)
        if engine is not None and loop is not None:
            loop.call_soon_threadsafe(engine.end_streams)
        stop(sig, frame)

    server.handle_exit = handle_exit  # type: ignore[method-assign]
    return server


@app.command(
    help=_doc(
        "Start the REST API and, unless JOBQUEUE_EMBEDDED_WORKER=false, a worker in it.",
        "Settings are JOBQUEUE_* variables (docs/operations.md#settings). Tasks may call "
        "loopback and private addresses (the demo API on 127.0.0.1) only with "
        "JOBQUEUE_ALLOW_PRIVATE_NETWORKS=true.",
        "Example: JOBQUEUE_ALLOW_PRIVATE_NETWORKS=true jobqueue serve --port 8000",
    )
)
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    broker_url: BrokerOpt = None,
) -> None:
    settings = load_settings(**_broker_override(broker_url))
    if settings.public_url is None:  # callback URLs point at this server
        where = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        settings = settings.model_copy(update={"public_url": f"http://{where}:{port}"})

    async def check() -> None:  # the settings and the database, before uvicorn starts
        # Not the broker: one that is down must not stop the start (the app then polls).
        engine = await open_engine(dataclasses.replace(settings.engine_config(), broker_url=None))
        await engine.close()

    _run_async(check())

    import uvicorn

    from api.main import create_app

    web = create_app(settings)
    config = uvicorn.Config(
        web,
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 5,
    )
    _end_streams_on_exit(uvicorn.Server(config), web).run()


@app.command(
    help=_doc(
        "Run a worker only: it takes tasks from JOBQUEUE_DB_URL, which several workers and "
        "servers can share.",
        "SIGTERM or Ctrl-C stops claiming, lets running calls finish for "
        "JOBQUEUE_SHUTDOWN_GRACE seconds, then hands the rest back to the queue.",
        "Example: JOBQUEUE_CONCURRENCY=32 jobqueue worker",
    )
)
def worker(
    burst: Annotated[bool, typer.Option(help="Exit once nothing is queued or running")] = False,
    broker_url: BrokerOpt = None,
) -> None:
    settings = load_settings(**_broker_override(broker_url))
    configure_logging(
        settings.log_level, settings.log_format, settings.engine_config().secret_header_names
    )

    async def main() -> None:
        engine = await open_engine(settings.engine_config())
        try:
            runner = engine.worker()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runner.stop)
            await runner.run(burst=burst)
            if runner.failure is not None:
                raise CliError(f"the worker failed: {runner.failure}", code=1)
        finally:
            await engine.close()

    _run_async(main())


@app.command(
    help=_doc(
        "Validate a workflow file and run it here, with a live task table (no server).",
        "The job lives in a private SQLite file, removed at the end (JOBQUEUE_DB_URL is not "
        "used): this process runs only this job, and nothing else (a 'jobqueue serve' in the "
        "same directory) can take it. --db URL uses that database instead, and shares its "
        "queue.",
        "Ctrl-C or SIGTERM cancels the job and interrupts its running calls, then exits with "
        "130 (143 after SIGTERM); a second Ctrl-C exits at once. Otherwise the exit code is 0 "
        "only if the job succeeded.",
        "Targets on 127.0.0.1 (the examples' demo API) need JOBQUEUE_ALLOW_PRIVATE_NETWORKS=true.",
        "Example: JOBQUEUE_ALLOW_PRIVATE_NETWORKS=true jobqueue run "
        "examples/workflows/fan_out_fan_in.yaml --param base_url=http://127.0.0.1:8001",
    )
)
def run(
    file: FileArg,
    param: ParamOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result document")] = False,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            help="Use this database instead of a private one. This run's worker takes only "
            "this job's tasks there; other workers on that database may take them too",
        ),
    ] = None,
) -> None:
    from api.cli_local import run_workflow

    params = _params(param)
    settings = load_settings()
    code = _run_async(
        run_workflow(file, params, settings, as_json=as_json, console=console, db_url=db)
    )
    raise typer.Exit(code)


@app.command(
    help=_doc(
        "Report every creation-time problem of a workflow file, at file:line:column; exit "
        "code 1 if it is invalid.",
        "Locally nothing is created or read, so only the InterfaceMasters inline in the file "
        "are known; --server URL checks against that server, with its stored InterfaceMasters. "
        "The last line says which.",
        "Example: jobqueue validate examples/workflows/search_enrich_notify.yaml",
    )
)
def validate(
    file: FileArg,
    param: ParamOpt = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            "-s",
            metavar="URL",
            help="Check against this server (its stored InterfaceMasters) instead of locally",
        ),
    ] = None,
) -> None:
    params = _params(param)
    if server is not None:
        from api import cli_remote

        with connect(server) as jq:
            raise typer.Exit(cli_remote.validate(jq, file, params, console))
    from api.cli_local import validate_file

    raise typer.Exit(_run_async(validate_file(file, params, load_settings(), console)))


@app.command(
    help=_doc(
        "Send a workflow file to a running server (POST /api/v1/jobs); an invalid one is "
        "reported at file:line:column.",
        "--wait follows the job with a live task table and exits 0 only if it succeeded; "
        "Ctrl-C stops following (the job goes on).",
        "Example: jobqueue submit examples/workflows/retry_backoff.yaml "
        "--server http://127.0.0.1:8000 --wait",
    )
)
def submit(
    file: FileArg,
    server: ServerOpt = DEFAULT_SERVER,
    wait: Annotated[bool, typer.Option(help="Follow the job to its end (live table)")] = False,
    param: ParamOpt = None,
) -> None:
    from api import cli_remote

    params = _params(param)
    try:
        with connect(server) as jq:
            code = cli_remote.submit(jq, file, params, wait=wait, console=console)
    except JobInvalid as exc:
        print_report(console, exc, None, str(file))
        code = 1
    raise typer.Exit(code)


@db_app.command(
    "upgrade",
    help=_doc(
        "Apply the schema migrations to JOBQUEUE_DB_URL (every process does it on start; run "
        "it once before starting many processes on a fresh PostgreSQL database).",
        "Example: jobqueue db upgrade",
    ),
)
def db_upgrade() -> None:
    settings = load_settings()

    async def main() -> None:
        engine = await open_engine(settings.engine_config(), check_targets=False)
        await engine.close()

    _run_async(main())
    console.print("database schema is up to date")


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@jobs_app.command(
    "list",
    help=_doc(
        "List jobs, newest first, a page at a time; the line under the table gives the "
        "command for the next page. --json prints the server's document.",
        "Example: jobqueue jobs list --status failed --tag nightly --limit 50",
    ),
)
def jobs_list(
    server: ServerOpt = DEFAULT_SERVER,
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status")] = None,
    tag: Annotated[str | None, typer.Option(help="Only jobs with this tag")] = None,
    name: Annotated[str | None, typer.Option(help="Only jobs with this name")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Jobs per page")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Where the page starts: the 'next page' hint's cursor")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    from api.cli_remote import jobs_table, next_page_hint

    given = {"status": status.value if status else None, "tag": tag, "name": name}
    filters: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    with connect(server) as jq:
        page = jq.list(limit=limit, cursor=cursor, **filters)
    if as_json:
        _print_json(page.raw)
        return
    args = [f"--{k} {shlex.quote(v)}" for k, v in filters.items()]
    if server != DEFAULT_SERVER:
        args.insert(0, f"--server {shlex.quote(server)}")
    if limit != 20:
        args.append(f"--limit {limit}")
    if not page.items:
        console.print("no jobs" + (f" ({' '.join(args)})" if args else ""), highlight=False)
        return
    console.print(jobs_table(page, console.width))
    if page.next_cursor:
        console.print(next_page_hint(page.next_cursor, args), highlight=False, soft_wrap=True)


@jobs_app.command(
    "show",
    help=_doc(
        "A job (status, times, how many tasks are done) and a table of its tasks. --json "
        "prints the server's document.",
        "Example: jobqueue jobs show j_01JD...",
    ),
)
def jobs_show(job_id: str, server: ServerOpt = DEFAULT_SERVER, as_json: JsonOpt = False) -> None:
    from api.cli_remote import job_view

    with connect(server) as jq:
        detail = jq.get(job_id)
    if as_json:
        _print_json(detail.raw)
        return
    console.print(job_view(detail, console.width))


@jobs_app.command(
    "result",
    help=_doc(
        "Every task's response (status, headers, body, error), as JSON.",
        "Example: jobqueue jobs result j_01JD... | jq .tasks",
    ),
)
def jobs_result(job_id: str, server: ServerOpt = DEFAULT_SERVER) -> None:
    with connect(server) as jq:
        _print_json(jq.result(job_id).raw)


def _control(server: str, as_json: bool, action: Callable[[JobQueue], Any], done: str) -> None:
    with connect(server) as jq:
        job = action(jq)
    if as_json:
        _print_json(job.raw)
    else:
        console.print(f"{done} job {job.job_id} (status now {job.status})", highlight=False)


@jobs_app.command(
    "cancel",
    help=_doc(
        "Cancel a job that has not ended; its running calls are interrupted.",
        "Example: jobqueue jobs cancel j_01JD...",
    ),
)
def jobs_cancel(job_id: str, server: ServerOpt = DEFAULT_SERVER, as_json: JsonOpt = False) -> None:
    _control(server, as_json, lambda jq: jq.cancel(job_id), "canceled")


@jobs_app.command(
    "retry",
    help=_doc(
        "Run the failed, skipped and canceled tasks of a failed or canceled job again.",
        "Example: jobqueue jobs retry j_01JD...",
    ),
)
def jobs_retry(job_id: str, server: ServerOpt = DEFAULT_SERVER, as_json: JsonOpt = False) -> None:
    _control(server, as_json, lambda jq: jq.retry(job_id), "retried")


@app.command(
    help=_doc(
        "Start the demo API (examples/demo_api) on 127.0.0.1 and run a workflow against it, "
        "end to end, as run does (live task table, private database).",
        "Private-network targets are allowed for this command only.",
        "Example: jobqueue demo",
    )
)
def demo(
    workflow: Annotated[Path, typer.Argument(help="Workflow to run against the demo API")] = Path(
        "examples/workflows/search_enrich_notify.yaml"
    ),
    port: Annotated[int, typer.Option(help="Port of the demo API")] = 8001,
) -> None:
    from api.demo import run_demo

    raise typer.Exit(run_demo(workflow, port, console))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
