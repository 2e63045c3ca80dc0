"""The CLI's local side: run a workflow on a database of its own, validate a file; and the output
every command shares (error lines, problem reports, the live task table).

They use the same :class:`engine.Engine` the REST API uses; nothing here re-implements a rule.
Importing this module does not load the engine's store (the server commands stay quick to
start): :class:`Engine` is imported where a command opens one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from api.cli_listener import CallbackListener, needs_listener
from api.settings import SECRET_SETTINGS, Settings
from engine import (
    Conflict,
    EngineConfig,
    JobInvalid,
    LoadedDocument,
    Problem,
    WorkflowFileError,
    attach_marks,
    load_workflow_file,
)

if TYPE_CHECKING:
    from engine import Engine

STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "running": "yellow",
    "waiting": "blue",
    "queued": "cyan",
    "pending": "dim",
    "skipped": "magenta",
    "canceled": "red",
}
#: a job in one of these no longer changes on its own
JOB_ENDED = frozenset({"succeeded", "failed", "canceled"})
#: a task in one of these counts as done in "N of M done"
TASK_ENDED = frozenset({"succeeded", "failed", "canceled", "skipped"})
#: which rows a task table keeps when not all fit: the lower, the more it matters
ROW_RANK = {
    "running": 0,
    "failed": 1,
    "waiting": 2,
    "queued": 3,
    "canceled": 4,
    "pending": 5,
    "succeeded": 6,
    "skipped": 7,
}
LOCAL_SOURCE = "checked locally (InterfaceMasters: only those inline in the file)"
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


# --------------------------------------------------------------------------- problem reports


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


# --------------------------------------------------------------------------- the task table


def _error_text(task: dict[str, Any]) -> str:
    if task["status"] == "skipped":
        return str(task.get("skip_reason") or "")
    error = task.get("error") or {}
    return str(error.get("message") or error.get("type") or "")


def _visible_rows(
    tasks: dict[str, dict[str, Any]], console: Console | None
) -> tuple[list[str], list[str]]:
    """(shown, hidden) task names. On a terminal only as many rows as fit on the screen are
    shown, the running and failed ones first; elsewhere (a pipe, a file) every row is."""
    names = list(tasks)
    if console is None or not console.is_terminal:
        return names, []
    width, height = console.size
    budget = max(height - 8, 3)  # title, header, rule, caption, the line under the table
    error_width = max(width - 50, 20)
    by_rank = sorted(
        range(len(names)), key=lambda i: (ROW_RANK.get(tasks[names[i]]["status"], 9), i)
    )
    chosen: set[int] = set()
    for i in by_rank:
        lines = 1 + len(_error_text(tasks[names[i]])) // error_width
        if lines > budget:
            continue  # too tall for what is left: counted in the caption, printed at the end
        budget -= lines
        chosen.add(i)
    shown = [names[i] for i in sorted(chosen)]
    hidden = [names[i] for i in range(len(names)) if i not in chosen]
    return shown, hidden


def status_counts(statuses: list[str]) -> str:
    counts = Counter(statuses)
    order = sorted(counts, key=lambda s: (ROW_RANK.get(s, 9), s))
    return ", ".join(f"{counts[s]} {s}" for s in order)


def task_table(result: dict[str, Any], console: Console | None = None) -> Table:
    """The tasks of a job result: status, attempts, HTTP status, duration and the whole error
    message (wrapped, never cut). The title says how many tasks are done; rows that do not fit
    on the screen are summarised in the caption, by status."""
    tasks: dict[str, dict[str, Any]] = result["tasks"]
    done = sum(1 for t in tasks.values() if t["status"] in TASK_ENDED)
    status = result["status"]
    style = STATUS_STYLE.get(status, "")
    name = f" {escape(result['name'])}" if result.get("name") else ""
    table = Table(
        title=f"job {result['job_id']}{name}: [{style}]{status}[/{style}], "
        f"{done} of {len(tasks)} done",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        expand=True,  # the title and the error messages get the whole width
    )
    table.add_column("task", overflow="fold", max_width=32)
    table.add_column("status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("http", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    shown, hidden = _visible_rows(tasks, console)
    # The message wraps between words; a word wider than the column is folded, never cut. So
    # that a setting's name in a fix hint stays whole, the column is as wide as the longest word
    # when the other columns leave room for it (a table wider than the console would be cut).
    longest = max((len(w) for n in shown for w in _error_text(tasks[n]).split()), default=0)
    others = max((len(n) for n in shown), default=4) + len("succeeded") + len("tries")
    others += len("http") + len("99999 ms") + 2 * 5
    room = (console.width if console is not None else 80) - others
    table.add_column("error", overflow="fold", ratio=1, min_width=max(min(longest, room), 1))
    for task_name in shown:
        task = tasks[task_name]
        task_style = STATUS_STYLE.get(task["status"], "")
        duration = f"{task['duration_ms']} ms" if task.get("duration_ms") is not None else ""
        table.add_row(
            escape(task_name),
            f"[{task_style}]{task['status']}[/{task_style}]",
            str(task.get("attempts") or 0),
            str(task.get("response_status") or ""),
            duration,
            escape(_error_text(task)),
        )
    if hidden:
        counts = status_counts([tasks[n]["status"] for n in hidden])
        table.caption = f"{len(hidden)} more task(s) not shown: {counts}"
        table.caption_justify = "left"
    return table


def print_hidden_failures(
    console: Console, result: dict[str, Any], shown_table: Table | None
) -> None:
    """After a live view that had to hide rows: the errors of failed tasks it did not show."""
    if shown_table is None or not shown_table.caption:
        return
    _, hidden = _visible_rows(result["tasks"], console)
    for name in hidden:
        task = result["tasks"][name]
        if task["status"] == "failed":
            text = escape(f"{name}: {_error_text(task)}")
            console.print(f"[red]failed[/red] {text}", highlight=False, soft_wrap=True)


class TaskView:
    """The live task table while a job runs (nothing when ``live`` is false, for ``--json``);
    notes go to ``notes`` (stderr with ``--json``)."""

    def __init__(self, console: Console, notes: Console, *, live: bool) -> None:
        self.console = console
        self.notes = notes
        self._live: Live | None = None
        self._enabled = live
        self.last: Table | None = None

    def update(self, result: dict[str, Any]) -> None:
        if not self._enabled:
            return
        self.last = task_table(result, self.console)
        if self._live is None:
            self._live = Live(self.last, console=self.console, auto_refresh=False)
            self._live.start()
        self._live.update(self.last, refresh=True)

    def note(self, text: str) -> None:
        """A line above the table (or on stderr with ``--json``)."""
        self.notes.print(text, highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if not self.console.is_terminal:
                self.console.line()  # Live leaves its last frame without a newline off a tty


# --------------------------------------------------------------------------- settings, database


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
            message = message.removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
            message = message.removeprefix("value error, ")
            shown = field and field not in SECRET_SETTINGS
            value = problem.get("input")
            if isinstance(value, str) and field.endswith("_url"):
                value = redact(value)  # a URL's password
            got = f" (got {value!r})" if shown else ""
            lines.append(f"{variable}: {message}{got}")
        first = problems[0]["loc"][0] if problems and problems[0]["loc"] else None
        field_info = Settings.model_fields.get(str(first)) if first is not None else None
        default = "" if field_info is None else f" ({_shown(field_info.default)})"
        hint = f"fix: set a valid value, or unset it for the default{default}; {SETTINGS_DOC}"
        raise CliError(lines[0], *lines[1:], hint) from exc


def redact(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


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


@contextlib.contextmanager
def private_database(db_url: str | None) -> Iterator[tuple[str, Path | None]]:
    """``(url, directory)``: ``db_url`` as given (directory ``None``), or, without one, a new
    SQLite file in a temporary directory that is removed afterwards."""
    if db_url is not None:
        yield db_url, None
        return
    directory = Path(tempfile.mkdtemp(prefix="jobqueue-run-"))
    try:
        yield f"sqlite+aiosqlite:///{directory / 'run.db'}", directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- signals

SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


class Interrupts:
    """Ctrl-C (SIGINT) and SIGTERM while ``run`` works.

    The first one sets :attr:`requested`: the job is canceled and its running calls are
    interrupted, then the command exits with ``128 + signal`` (130 for Ctrl-C, 143 for
    SIGTERM). A second one exits at once (``exit_now``: remove the private database, leave).
    """

    def __init__(self, exit_now: Callable[[int], None]) -> None:
        self.requested = asyncio.Event()
        self.signum: int | None = None
        self._exit_now = exit_now
        self._installed: list[int] = []

    @property
    def name(self) -> str:
        return SIGNAL_NAMES.get(signal.Signals(self.signum or signal.SIGINT), "a signal")

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._received, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or no signals here: Ctrl-C stays an exception
            self._installed.append(sig)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    def _received(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            self.requested.set()
            return
        self._exit_now(128 + signum)


@dataclass
class RunState:
    """What a second interrupt needs to know to say what it leaves behind."""

    job_id: str | None = None
    canceled: bool = False


def _leave_now(directory: Path | None, state: RunState) -> Callable[[int], None]:
    notes = Console(stderr=True)

    def leave(code: int) -> None:
        with contextlib.suppress(Exception):
            Console().show_cursor(True)
            what = ""
            if state.job_id and directory is None and not state.canceled:
                what = (
                    f"; job {state.job_id} may not be canceled yet: "
                    f"jobqueue jobs cancel {state.job_id}, on a server of that database"
                )
            notes.print(f"\ninterrupted again: exiting now{what}", highlight=False, soft_wrap=True)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)

    return leave


# --------------------------------------------------------------------------- run


async def run_workflow(
    path: Path,
    params: dict[str, str],
    settings: Settings,
    *,
    as_json: bool,
    console: Console,
    db_url: str | None = None,
) -> int:
    """Run one workflow to its end with a worker of this process; the exit code.

    Without ``db_url`` the job lives in a private SQLite file removed afterwards, so the worker
    can take no other job, and no other process can take this one. Ctrl-C / SIGTERM cancel it.
    """
    notes = Console(stderr=True) if as_json else console
    loaded: LoadedDocument | None = None
    try:
        spec, loaded = load(path, params)
        with private_database(db_url) as (url, directory):
            if db_url is None:
                source = "the private database"
                hint = "fix: set TMPDIR to a directory you can write, or give --db URL"
            else:
                source, hint = "--db", None
            state = RunState()
            interrupts = Interrupts(_leave_now(directory, state))
            interrupts.install()
            try:
                config = replace(settings.engine_config(), db_url=url)
                if db_url is None:  # nobody else sees a private database: no broker either
                    config = replace(config, broker_url=None)
                listener = CallbackListener(settings)
                if needs_listener(spec, settings):
                    config = replace(config, public_url=listener.bind())
                engine = await open_engine(config, source=source, hint=hint)
                try:
                    if db_url is not None:
                        notes.print(
                            f"database {redact(db_url)} (shared: this run's worker takes only "
                            "this job, but other workers on it may take this job's tasks)",
                            style="dim",
                            highlight=False,
                            soft_wrap=True,
                        )
                    async with listener.serving(engine):
                        return await _run(engine, spec, loaded, interrupts, state, as_json, console)
                finally:
                    await engine.close()
            finally:
                interrupts.remove()
    except JobInvalid as exc:
        print_report(notes, exc, loaded, str(path))
        return 1


async def _run(
    engine: Engine,
    spec: Any,
    loaded: LoadedDocument,
    interrupts: Interrupts,
    state: RunState,
    as_json: bool,
    console: Console,
) -> int:
    notes = Console(stderr=True) if as_json else console
    submitted = await engine.submit(spec, single_call=loaded.single_call)
    job_id = state.job_id = submitted.job_id
    warnings = [Problem(**w) for w in submitted.warnings]
    marked = attach_marks(warnings, loaded.marks, single_call=loaded.single_call)
    print_warnings(notes, marked, loaded.source)
    worker = engine.start_worker(only_jobs=frozenset({job_id}))

    async def cancel() -> None:
        try:
            await engine.cancel(job_id)
        except Conflict:
            pass  # it ended on its own in the meantime
        state.canceled = True

    view = TaskView(console, notes, live=not as_json)
    try:
        result = await follow(lambda: engine.get_result(job_id), view, interrupts, cancel)
    finally:
        view.close()
        worker.stop()
    if spec.on_complete is not None:
        # One try of the completion webhook before this run's database goes away.
        await engine.deliver_webhooks()
    print_hidden_failures(console, result, view.last)
    if as_json:
        print(json.dumps(result, indent=2, default=str))
    else:
        console.print(f"job {job_id} {result['status']}", highlight=False)
    if interrupts.signum is not None:
        return interrupts.exit_code
    return 0 if result["status"] == "succeeded" else 1


async def follow(
    read: Callable[[], Awaitable[dict[str, Any]]],
    view: TaskView,
    interrupts: Interrupts,
    cancel: Callable[[], Awaitable[None]],
    *,
    interval: float = 0.1,
) -> dict[str, Any]:
    """Show the job until it ends; on the first interrupt, cancel it (and say so)."""
    canceling = False
    result = await read()
    view.update(result)
    while result["status"] not in JOB_ENDED:
        if not canceling:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupts.requested.wait(), interval)
        else:
            await asyncio.sleep(interval)
        if interrupts.requested.is_set() and not canceling:
            canceling = True
            view.note(
                f"{interrupts.name}: canceling job {result['job_id']} and interrupting its "
                "running calls (press Ctrl-C again to exit at once)"
            )
            await cancel()
        result = await read()
        view.update(result)
    if canceling:
        view.note(f"canceled job {result['job_id']} ({interrupts.name})")
    return result


# --------------------------------------------------------------------------- validate


async def validate_file(
    path: Path, params: dict[str, str], settings: Settings, console: Console
) -> int:
    """Validate locally: on a private, temporary database (so no ./data/jobqueue.db appears),
    hence with the InterfaceMasters defined inline in the file only."""
    try:
        spec, loaded = load(path, params)
    except JobInvalid as exc:
        print_report(console, exc, None, str(path))
        return 1
    with private_database(None) as (url, _):
        engine = await open_engine(
            replace(settings.engine_config(), db_url=url, broker_url=None),
            source="the validation database",
            check_targets=False,
        )
        try:
            validated = await engine.validate(spec, single_call=loaded.single_call)
        except JobInvalid as exc:
            print_report(console, exc, loaded)
            console.print(LOCAL_SOURCE, highlight=False)
            if any(p.code == "unknown_interface" for p in exc.errors):
                console.print(
                    "  an InterfaceMaster stored on a server is known only there: "
                    "jobqueue validate FILE --server URL",
                    highlight=False,
                )
            return 1
        finally:
            await engine.close()
    warnings = attach_marks(validated.warnings, loaded.marks, single_call=loaded.single_call)
    print_warnings(console, warnings, loaded.source)
    console.print(
        f"[green]valid[/green] {escape(str(path))} ({len(spec.tasks)} task(s)); {LOCAL_SOURCE}",
        highlight=False,
        soft_wrap=True,
    )
    return 0
