"""``jobqueue workflows``: save, list, show and start workflow definitions on a running server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli_local import CliError, TaskView, print_hidden_failures, print_report
from api.cli_remote import connect
from engine import JobInvalid, WorkflowFileError, load_yaml_bytes
from jobqueue_client import InvalidJob, JobQueue

console = Console(stderr=False)

workflows_app = typer.Typer(
    help="Workflow definitions on a running server (--server URL or JOBQUEUE_SERVER): named, "
    "versioned jobs that are started with params.",
    epilog="Example: jobqueue workflows apply examples/workflows/ && jobqueue workflows list",
    no_args_is_help=True,
)

ServerOpt = Annotated[
    str, typer.Option("--server", "-s", envvar="JOBQUEUE_SERVER", help="Base URL of the server")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the server's JSON document")]
DEFAULT_SERVER = "http://127.0.0.1:8000"
_SUFFIXES = (".yaml", ".yml")


def definition_files(paths: list[Path]) -> list[Path]:
    """The files to apply: each file given, and the YAML files of each directory (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise CliError(f"{path}: no such file or directory")
    return found


def _apply_one(jq: JobQueue, path: Path) -> bool:
    """Save one file's definition under its ``name``; false (after the report) when refused."""
    from api.cli_remote import _report_from_server

    try:
        loaded = load_yaml_bytes(path.read_bytes(), source=str(path))
    except WorkflowFileError as exc:
        print_report(console, JobInvalid([exc.to_problem()]), None, str(path))
        return False
    document = loaded.document
    name = document.get("name") if isinstance(document, dict) else None
    if not isinstance(name, str) or not name:
        console.print(f"{escape(str(path))}: skipped, no `name:` to store it under")
        return False
    try:
        saved, created = jq.put_workflow(name, document)
    except InvalidJob as exc:
        print_report(console, _report_from_server(exc), loaded, str(path))
        return False
    if created:
        word = "created" if saved["version"] == 1 else "updated"
    else:
        word = "unchanged"
    console.print(f"{name}: {word} (version {saved['version']})", highlight=False)
    return True


@workflows_app.command(
    "apply",
    help="Save the definitions of YAML files (or of every .yaml file of a directory) under "
    "each file's `name`; prints created, updated or unchanged per name. Exit 1 if one was "
    "refused (its problems are shown at file:line:column). "
    "Example: jobqueue workflows apply examples/workflows/enrich_one.yaml",
)
def apply(
    paths: Annotated[list[Path], typer.Argument(help="YAML files or directories")],
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    files = definition_files(paths)
    with connect(server) as jq:
        results = [_apply_one(jq, f) for f in files]
    raise typer.Exit(0 if all(results) else 1)


@workflows_app.command(
    "list",
    help="Every definition with its latest version. Example: jobqueue workflows list",
)
def list_workflows(server: ServerOpt = DEFAULT_SERVER, as_json: JsonOpt = False) -> None:
    with connect(server) as jq:
        items = jq.list_workflows()
    if as_json:
        console.print_json(json.dumps({"items": list(items)}))
        return
    if not items:
        console.print("no workflows")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("name", "version", "saved", "description"):
        table.add_column(column)
    for item in items:
        table.add_row(
            escape(item["name"]),
            str(item["version"]),
            item["created_at"],
            escape(item["description"] or ""),
        )
    console.print(table)


@workflows_app.command(
    "show",
    help="One definition (the latest version, or --version V) and its versions. "
    "Example: jobqueue workflows show enrich-one --version 1",
)
def show(
    name: str,
    version: Annotated[int | None, typer.Option(min=1, help="This version")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    as_json: JsonOpt = False,
) -> None:
    with connect(server) as jq:
        found = jq.get_workflow(name, version)
    if as_json:
        console.print_json(json.dumps(found))
        return
    versions = ", ".join(str(v["version"]) for v in found["versions"])
    console.print(f"{escape(found['name'])} version {found['version']} (versions: {versions})")
    if found["description"]:
        console.print(escape(found["description"]))
    tasks = found["document"].get("tasks", [])
    console.print(f"{len(tasks)} task(s): " + ", ".join(escape(t["name"]) for t in tasks))
    if found["params_schema"] is not None:
        console.print("params_schema:")
        console.print_json(json.dumps(found["params_schema"]))


def _param_values(values: list[str] | None) -> dict[str, Any]:
    """``--param k=v``: values read as JSON when they parse (3, true, "x", [1]), else text."""
    out: dict[str, Any] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _follow(jq: JobQueue, job_id: str, interval: float = 0.2) -> int:
    view = TaskView(console, console, live=True)
    try:
        while True:
            result = jq.result(job_id)
            view.update(result.raw)
            if result.ended:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        view.close()
        console.print(f"stopped following job {job_id}; it goes on on the server")
        return 130
    view.close()
    print_hidden_failures(console, result.raw, view.last)
    console.print(f"job {job_id} {result.raw['status']}", highlight=False)
    return 0 if result.raw["status"] == "succeeded" else 1


@workflows_app.command(
    "start",
    help="Start a job of a definition (its latest version, or --version V). --param KEY=VALUE "
    "sets params.KEY (a value that is JSON, such as 3 or true, is sent as that value). --wait "
    "follows the job with a live task table and exits 0 only if it succeeded. "
    "Example: jobqueue workflows start enrich-one --param id=3 --wait",
)
def start(
    name: str,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Set params.KEY (repeatable)")
    ] = None,
    version: Annotated[int | None, typer.Option(min=1, help="Start this version")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the job to its end (live table)")] = False,
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    from api.cli_remote import _report_from_server

    params = _param_values(param)
    with connect(server) as jq:
        try:
            job = jq.start_workflow(name, params, version=version)
        except InvalidJob as exc:
            print_report(console, _report_from_server(exc), None, f"workflow {name}")
            raise typer.Exit(1) from None
        ref = job.raw["workflow"]
        console.print(
            f"started {job.job_id} ({ref['name']} version {ref['version']})", highlight=False
        )
        code = _follow(jq, job.job_id) if wait else 0
    raise typer.Exit(code)
