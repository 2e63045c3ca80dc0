"""``jobqueue schedules``: apply, list, show, delete cron schedules on JOBQUEUE_DB_URL.

The commands open the database as a worker does and call the same ``Engine`` functions as the
REST API; a running server or worker picks the change up within a second.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from api.cli_local import CliError, load_settings, open_engine, print_report
from engine import (
    Engine,
    JobInvalid,
    NotFound,
    WorkflowFileError,
    load_schedule_file,
    place_in_schedule_file,
)

T = TypeVar("T")
console = Console()

app = typer.Typer(
    help="Cron schedules on JOBQUEUE_DB_URL: each tick creates one job.",
    epilog="Example: jobqueue schedules apply nightly.yaml",
    no_args_is_help=True,
)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the JSON document")]


def _run(action: Callable[[Engine], Awaitable[T]]) -> T:
    from api.cli import _run_async

    async def main() -> T:
        engine = await open_engine(load_settings().engine_config())
        try:
            return await action(engine)
        except NotFound as exc:
            hint = "fix: `jobqueue schedules list` shows the names"
            raise CliError(str(exc), hint, code=1) from None
        finally:
            await engine.close()

    result: T = _run_async(main())
    return result


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


@app.command(
    "apply",
    help="Create or update the schedule named by a workflow file's `name`, from its "
    "`schedule:` section (cron, timezone, overlap, catch_up, enabled); the rest of the file "
    "is the job each tick creates, validated now (or the section names a stored definition: "
    "`workflow: {name, version, params}`).\n\n"
    "Example: jobqueue schedules apply nightly.yaml",
)
def apply(
    file: Annotated[Path, typer.Argument(help="Workflow YAML file", exists=True, dir_okay=False)],
    as_json: JsonOpt = False,
) -> None:
    try:
        fields, loaded = load_schedule_file(file)
    except WorkflowFileError as exc:
        print_report(console, JobInvalid([exc.to_problem()]), None, str(file))
        raise typer.Exit(1) from None
    except JobInvalid as exc:
        print_report(console, exc, None, str(file))
        raise typer.Exit(1) from None
    try:
        schedule, created = _run(lambda engine: engine.apply_schedule(fields))
    except JobInvalid as exc:
        placed = JobInvalid(
            place_in_schedule_file(exc.errors, loaded),
            place_in_schedule_file(exc.warnings, loaded),
        )
        print_report(console, placed, None, str(file))
        raise typer.Exit(1) from None
    if as_json:
        _print_json(schedule)
        return
    verb = "created" if created else "updated"
    console.print(
        f"{verb} schedule {schedule['name']} ({schedule['cron']} {schedule['timezone']}); "
        f"next fire time {schedule['next_fire_at'] or '-- (disabled)'}",
        highlight=False,
    )


@app.command(
    "list",
    help="Every schedule with its rule and next fire time.\n\nExample: jobqueue schedules list",
)
def list_(as_json: JsonOpt = False) -> None:
    items = _run(lambda engine: engine.list_schedules())
    if as_json:
        _print_json({"items": items})
        return
    if not items:
        console.print("no schedules")
        return
    table = Table("name", "cron", "timezone", "enabled", "overlap", "catch_up", "next fire (UTC)")
    for s in items:
        table.add_row(
            s["name"],
            s["cron"],
            s["timezone"],
            "yes" if s["enabled"] else Text("no", style="yellow"),
            s["overlap"],
            s["catch_up"],
            s["next_fire_at"] or "--",
        )
    console.print(table)


@app.command(
    "show",
    help="One schedule: its rule, its next fire times and the jobs its last ticks created.\n\n"
    "Example: jobqueue schedules show nightly-report",
)
def show(name: str, as_json: JsonOpt = False) -> None:
    s = _run(lambda engine: engine.get_schedule(name))
    if as_json:
        _print_json(s)
        return
    state = "enabled" if s["enabled"] else "disabled"
    console.print(
        f"[bold]{s['name']}[/bold] ({s['id']}): {s['cron']} in {s['timezone']}, {state}, "
        f"overlap {s['overlap']}, catch_up {s['catch_up']}",
        highlight=False,
    )
    console.print("next fire times (UTC): " + (", ".join(s["upcoming"]) or "--"), highlight=False)
    if not s["recent"]:
        console.print("no tick handled yet")
        return
    table = Table("tick (UTC)", "outcome", "job", "detail")
    for fire in s["recent"]:
        table.add_row(
            fire["fire_time"], fire["outcome"], fire["job_id"] or "", fire["detail"] or ""
        )
    console.print(table)


@app.command(
    "delete",
    help="Delete a schedule (the jobs it created stay).\n\n"
    "Example: jobqueue schedules delete nightly-report",
)
def delete(name: str) -> None:
    _run(lambda engine: engine.delete_schedule(name))
    console.print(f"deleted schedule {name}", highlight=False)
