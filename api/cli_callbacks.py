"""``jobqueue callbacks complete TOKEN``: finish a task that waits for its callback, by hand.

Over HTTP through ``jobqueue_client`` (``--server``), or with ``--local`` straight on the
database of JOBQUEUE_DB_URL; both end in the same Engine function.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from api.cli_local import CliError

console = Console()

callbacks_app = typer.Typer(
    help="Finish callback tasks by hand (what the remote system would POST).",
    epilog="Example: jobqueue callbacks complete TOKEN --output result.json",
    no_args_is_help=True,
)


def _output(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: not a readable JSON file: {exc}", code=2) from exc


def _report(output: Path | None, fail: str | None) -> tuple[Any, dict[str, Any] | None]:
    if (output is None) == (fail is None):
        raise typer.BadParameter("give exactly one of --output FILE.json or --fail MESSAGE")
    if fail is not None:
        return None, {"message": fail}
    assert output is not None
    return _output(output), None


async def _complete_locally(token: str, output: Any, error: dict[str, Any] | None) -> Any:
    from api.cli_local import load_settings, open_engine
    from engine import Conflict, NotFound

    engine = await open_engine(load_settings().engine_config(), check_targets=False)
    try:
        status = "failed" if error is not None else "succeeded"
        return await engine.complete_callback(token, status=status, output=output, error=error)
    except (NotFound, Conflict) as exc:
        raise CliError(str(exc), code=1) from exc
    finally:
        await engine.close()


def _complete_remotely(server: str, token: str, output: Any, error: Any) -> dict[str, Any]:
    from api.cli_remote import client_error
    from jobqueue_client import JobQueue, JobQueueClientError

    try:
        with JobQueue(server) as jq:
            return jq.complete_callback(token, output=output, error=error).raw
    except JobQueueClientError as exc:
        raise client_error(exc, server) from exc


@callbacks_app.command(
    "complete",
    help="Report the remote work of a waiting task as done (--output FILE.json: its output, "
    "checked against the task's output schema) or failed (--fail MESSAGE). Exit 0 when the "
    "task succeeded.\n\nExample: jobqueue callbacks complete TOKEN --fail 'out of stock'",
)
def complete(
    token: Annotated[str, typer.Argument(help="The token the task handed out")],
    output: Annotated[
        Path | None, typer.Option("--output", help="JSON file with the task's output")
    ] = None,
    fail: Annotated[str | None, typer.Option("--fail", help="Fail the task with MESSAGE")] = None,
    server: Annotated[
        str, typer.Option("--server", "-s", envvar="JOBQUEUE_SERVER", help="Base URL of the server")
    ] = "http://127.0.0.1:8000",
    local: Annotated[
        bool, typer.Option("--local", help="Use the database of JOBQUEUE_DB_URL, no server")
    ] = False,
) -> None:
    value, error = _report(output, fail)
    if local:
        from api.cli import _run_async

        answer = _run_async(_complete_locally(token, value, error))
    else:
        answer = _complete_remotely(server, token, value, error)
    console.print(
        f"job {answer['job_id']} task {answer['task']}: {answer['status']}", highlight=False
    )
    if answer.get("error"):
        console.print(json.dumps(answer["error"], indent=2), highlight=False)
    raise typer.Exit(0 if answer["status"] == "succeeded" else 1)
