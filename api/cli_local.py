"""The CLI's local commands: run a workflow on the embedded default, validate a file; the
settings and database errors every command reports as lines.

They open the same :class:`engine.Engine` the REST API uses; nothing here re-implements a rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from api.settings import Settings
from engine import (
    Engine,
    EngineConfig,
    JobInvalid,
    LoadedDocument,
    Problem,
    WorkflowFileError,
    attach_marks,
    load_workflow_file,
)

STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "queued": "cyan",
    "pending": "dim",
    "skipped": "magenta",
    "canceled": "red",
}
SETTINGS_DOC = "every setting: docs/operations.md#settings"


class CliError(Exception):
    """A failure reported as ``error: <message>`` and indented hint lines (never a traceback,
    unless ``--verbose``), then exit ``code``: 2 for settings and unreachable servers."""

    def __init__(self, message: str, *hints: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hints = hints
        self.code = code


def print_error(console: Console, exc: CliError) -> None:
    console.print(f"[red]error:[/red] {escape(exc.message)}", highlight=False, soft_wrap=True)
    for hint in exc.hints:
        console.print(f"  {escape(hint)}", highlight=False, soft_wrap=True)


def problem_lines(problems: list[Problem], source: str) -> list[str]:
    lines = []
    for p in problems:
        where = f"{source}:{p.line}:{p.column}" if p.line is not None else source
        task = f" [task {p.task}]" if p.task else ""
        edge = f" ({p.edge})" if p.edge else ""
        loc = f" at {p.location}" if p.location else ""
        lines.append(f"{where}: {p.code}{task}{edge}{loc}: {p.message}")
    return lines


def print_warnings(console: Console, warnings: list[Problem], source: str) -> None:
    for line in problem_lines(warnings, source):
        console.print(f"[yellow]warning[/yellow] {escape(line)}", highlight=False, soft_wrap=True)


def print_report(
    console: Console,
    exc: JobInvalid,
    loaded: LoadedDocument | None,
    exc_source: str = "<document>",
) -> None:
    errors, warnings = exc.errors, exc.warnings
    if loaded is not None:
        errors = attach_marks(errors, loaded.marks, single_call=loaded.single_call)
        warnings = attach_marks(warnings, loaded.marks, single_call=loaded.single_call)
    source = loaded.source if loaded is not None else exc_source
    for line in problem_lines(errors, source):
        console.print(f"[red]error[/red] {escape(line)}", highlight=False, soft_wrap=True)
    print_warnings(console, warnings, source)
    console.print(f"{len(errors)} error(s), {len(warnings)} warning(s)")


def load(path: Path, params: dict[str, str]) -> tuple[Any, LoadedDocument]:
    """Load a file; a file that fails the job model raises JobInvalid with line numbers."""
    try:
        return load_workflow_file(path, params=params)
    except WorkflowFileError as exc:
        raise JobInvalid([exc.to_problem()]) from None


def task_table(result: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("task", "status", "attempts", "http", "duration", "error"):
        table.add_column(column)
    for name, task in result["tasks"].items():
        style = STATUS_STYLE.get(task["status"], "")
        error = task.get("error") or {}
        duration = f"{task['duration_ms']:.0f} ms" if task.get("duration_ms") else ""
        table.add_row(
            name,
            f"[{style}]{task['status']}[/{style}]",
            str(task["attempts"]),
            str(task["response_status"] or ""),
            duration,
            str(error.get("message", ""))[:80] if task["status"] != "skipped" else "",
        )
    return table


def _shown(value: Any) -> str:
    if value in ((), "", None):
        return "empty"
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment; a bad value is a :class:`CliError` naming the
    variable, what is wrong with it and its default (exit code 2)."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        lines = []
        for problem in problems:
            field = str(problem["loc"][0]) if problem["loc"] else ""
            variable = f"JOBQUEUE_{field.upper()}" if field else "JOBQUEUE_*"
            message = str(problem["msg"]).split(", unable to parse")[0]
            message = message[:1].lower() + message[1:]
            lines.append(f"{variable}: {message} (got {problem.get('input')!r})")
        first = problems[0]["loc"][0] if problems and problems[0]["loc"] else None
        field_info = Settings.model_fields.get(str(first)) if first is not None else None
        default = "" if field_info is None else f" ({_shown(field_info.default)})"
        hint = f"fix: set a valid value, or unset it for the default{default}; {SETTINGS_DOC}"
        raise CliError(lines[0], *lines[1:], hint) from exc


def redact(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _database_hint(url: str, source: str) -> str:
    if url.startswith("postgresql"):
        return (
            f"fix: start PostgreSQL or point {source} at a reachable server "
            "(postgresql+asyncpg://user:password@host:5432/dbname)"
        )
    if url.startswith("sqlite"):
        return (
            f"fix: point {source} at a file in a directory you can write "
            "(sqlite+aiosqlite:///./data/jobqueue.db)"
        )
    return (
        f"fix: {source} takes sqlite+aiosqlite:///path/to/file.db or "
        "postgresql+asyncpg://user:password@host:5432/dbname"
    )


async def open_engine(
    config: EngineConfig,
    *,
    source: str = "JOBQUEUE_DB_URL",
    hint: str | None = None,
    migrate: bool = True,
    check_targets: bool = True,
) -> Engine:
    """Open the engine; a database that cannot be opened or a bad target policy (a malformed
    JOBQUEUE_ALLOWED_HOSTS entry) is a :class:`CliError` naming ``source`` and the fix."""
    from engine import Engine

    try:
        engine = await Engine.open(config, migrate=migrate)
    except Exception as exc:  # whatever stops the database from opening: say which and why
        message = f"{source}: cannot open {redact(config.db_url)}: {_reason(exc)}"
        raise CliError(message, hint or _database_hint(config.db_url, source)) from exc
    if check_targets:
        try:
            engine.executor()  # builds the target policy, which refuses a malformed entry
        except ValueError as exc:
            await engine.close()
            message = str(exc).removeprefix("allowed_hosts: ")
            raise CliError(
                f"JOBQUEUE_ALLOWED_HOSTS: {message}",
                "fix: a comma-separated list of host names, *.domain patterns, IP addresses "
                "or CIDRs (10.0.0.0/8); " + SETTINGS_DOC,
            ) from exc
    return engine


async def run_workflow(
    path: Path, params: dict[str, str], settings: Settings, *, as_json: bool, console: Console
) -> int:
    loaded: LoadedDocument | None = None
    config: EngineConfig = settings.engine_config()
    notes = Console(stderr=True) if as_json else console
    engine = await open_engine(config)
    try:
        spec, loaded = load(path, params)
        submitted = await engine.submit(spec, single_call=loaded.single_call)
        warnings = [Problem(**w) for w in submitted.warnings]
        marked = attach_marks(warnings, loaded.marks, single_call=loaded.single_call)
        print_warnings(notes, marked, loaded.source)
        worker = engine.start_worker()
        result = await _follow(engine, submitted.job_id, console, live=not as_json)
        worker.stop()
    except JobInvalid as exc:
        print_report(notes, exc, loaded, str(path))
        return 1
    finally:
        await engine.close()
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        console.print(f"job {result['job_id']} {result['status']}")
    return 0 if result["status"] == "succeeded" else 1


async def _follow(engine: Engine, job_id: str, console: Console, *, live: bool) -> dict[str, Any]:
    title = f"job {job_id}"
    result = await engine.get_result(job_id)
    view = Live(task_table(result, title), console=console) if live else None
    with view if view is not None else contextlib.nullcontext():
        while result["status"] not in ("succeeded", "failed", "canceled"):
            await asyncio.sleep(0.1)
            result = await engine.get_result(job_id)
            if view is not None:
                view.update(task_table(result, title))
    if view is not None and not console.is_terminal:
        console.line()  # Live leaves its last frame without a newline when not on a terminal
    return result


async def validate_file(
    path: Path, params: dict[str, str], settings: Settings, console: Console
) -> int:
    loaded: LoadedDocument | None = None
    engine = await open_engine(settings.engine_config(), check_targets=False)
    try:
        spec, loaded = load(path, params)
        validated = await engine.validate(spec, single_call=loaded.single_call)
    except JobInvalid as exc:
        print_report(console, exc, loaded, str(path))
        return 1
    finally:
        await engine.close()
    warnings = attach_marks(validated.warnings, loaded.marks, single_call=loaded.single_call)
    print_warnings(console, warnings, loaded.source)
    console.print(f"[green]valid[/green] {path} ({len(spec.tasks)} task(s))")
    return 0
