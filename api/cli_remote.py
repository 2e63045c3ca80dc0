"""The CLI's commands against a running server (``--server URL``), through jobqueue_client."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from api.cli_local import (
    STATUS_STYLE,
    TASK_ENDED,
    CliError,
    TaskView,
    load,
    load_settings,
    print_hidden_failures,
    print_report,
    print_warnings,
    status_counts,
)
from engine import JobInvalid, Problem, attach_marks
from jobqueue_client import (
    ApiError,
    InvalidJob,
    JobDetail,
    JobPage,
    JobQueue,
    JobQueueClientError,
    TransportError,
)


def server_source(server: str) -> str:
    return f"checked against server {server}"


def describe(exc: Exception) -> str:
    """How the CLI words an error: the server's code and message, or the transport's reason."""
    if isinstance(exc, ApiError):
        return f"{exc.code or f'http_{exc.status_code}'}: {exc.message} (HTTP {exc.status_code})"
    if isinstance(exc, TransportError) and exc.__cause__ is not None:
        return str(exc.__cause__) or type(exc.__cause__).__name__
    return str(exc)


@contextlib.contextmanager
def connect(server: str) -> Iterator[JobQueue]:
    """A client of ``server`` that sends ``JOBQUEUE_API_KEY``; its errors become
    ``error: <code>: <message>`` lines."""
    try:
        with JobQueue(server, api_key=load_settings().api_key) as jq:
            yield jq
    except JobQueueClientError as exc:
        raise client_error(exc, server) from exc


def client_error(exc: JobQueueClientError, server: str) -> CliError:
    """``error: <code>: <message>`` for an error answer (exit 1); ``cannot reach`` (exit 2)."""
    if isinstance(exc, ApiError) and exc.status_code == 401:
        return CliError(describe(exc), "fix: export JOBQUEUE_API_KEY=<your key>", code=1)
    if isinstance(exc, ApiError):
        return CliError(describe(exc), code=1)
    if isinstance(exc, TransportError):
        return CliError(
            f"cannot reach {server}: {describe(exc)}",
            "fix: start the server (jobqueue serve) or give its address: --server URL "
            "or JOBQUEUE_SERVER",
        )
    return CliError(f"{server}: {describe(exc)}")


def _problems(found: Iterable[dict[str, Any]]) -> list[Problem]:
    """The server's problem documents as engine records (their JSON pointers map to marks)."""
    return [
        Problem(
            code=str(d.get("code", "")),
            message=str(d.get("message", "")),
            location=str(d.get("location") or ""),
            task=d.get("task"),
            edge=d.get("edge"),
        )
        for d in found
    ]


def _report_from_server(exc: InvalidJob) -> JobInvalid:
    return JobInvalid(_problems(exc.errors), _problems(exc.warnings))


# --------------------------------------------------------------------------- submit, validate


def submit(
    jq: JobQueue, path: Path, params: dict[str, str], *, wait: bool, console: Console
) -> int:
    spec, loaded = load(path, params)
    server = jq.base_url
    try:
        job = jq.submit(loaded.document)
    except InvalidJob as exc:
        print_report(console, _report_from_server(exc), loaded)
        return 1
    marked = attach_marks(_problems(job.warnings), loaded.marks, single_call=loaded.single_call)
    print_warnings(console, marked, loaded.source)
    console.print(f"submitted {job.job_id} ({len(spec.tasks)} task(s)) to {server}")
    if not wait:
        return 0
    view = TaskView(console, console, live=True)
    try:
        result = _follow(jq, job.job_id, view)
    except KeyboardInterrupt:
        view.close()
        console.print(
            f"stopped following job {job.job_id}; it goes on on the server "
            f"(cancel it: jobqueue jobs cancel {job.job_id} --server {server})",
            highlight=False,
        )
        return 130
    view.close()
    print_hidden_failures(console, result, view.last)
    console.print(f"job {job.job_id} {result['status']}", highlight=False)
    return 0 if result["status"] == "succeeded" else 1


def _follow(jq: JobQueue, job_id: str, view: TaskView, interval: float = 0.2) -> dict[str, Any]:
    while True:
        result = jq.result(job_id)
        view.update(result.raw)
        if result.ended:
            return result.raw
        time.sleep(interval)


def validate(jq: JobQueue, path: Path, params: dict[str, str], console: Console) -> int:
    """Validate against a server: its InterfaceMasters, its limits; problems at file lines."""
    server = jq.base_url
    try:
        spec, loaded = load(path, params)
    except JobInvalid as exc:
        print_report(console, exc, None, str(path))
        return 1
    try:
        answer = jq.validate(loaded.document)
    except InvalidJob as exc:
        print_report(console, _report_from_server(exc), loaded)
        console.print(server_source(server), highlight=False)
        return 1
    marked = attach_marks(_problems(answer.warnings), loaded.marks, single_call=loaded.single_call)
    print_warnings(console, marked, loaded.source)
    console.print(
        f"[green]valid[/green] {escape(str(path))} ({len(spec.tasks)} task(s)); "
        f"{server_source(server)}",
        highlight=False,
        soft_wrap=True,
    )
    return 0


# --------------------------------------------------------------------------- jobs list / show


def when(value: datetime | None, since: datetime | None = None) -> str:
    """A timestamp in local time, short: the time of day alone when it is on the same day as
    ``since``; month and day within the current year; "" for none."""
    if value is None:
        return ""
    local = value.astimezone()
    if since is not None and since.astimezone().date() == local.date():
        return local.strftime("%H:%M:%S")
    if local.year == datetime.now().astimezone().year:
        return local.strftime("%m-%d %H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M")


def _status(status: str) -> str:
    style = STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/{style}]" if style else status


def _table(width: int) -> Table:
    """A table with two spaces between columns, or one on a console narrower than 90."""
    padding = (0, 1) if width >= 90 else (0, 0)
    return Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=padding, collapse_padding=True
    )


def jobs_table(page: JobPage, width: int) -> Table:
    table = _table(width)
    table.add_column("id", no_wrap=True, min_width=28)
    table.add_column("name", overflow="fold", min_width=8, ratio=1)
    table.add_column("status", no_wrap=True)
    table.add_column("tasks", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("finished", no_wrap=True)
    for job in page.items:
        table.add_row(
            job.job_id,
            escape(job.name or ""),
            _status(job.status),
            str(job.n_tasks),
            when(job.created_at),
            when(job.finished_at, job.created_at),
        )
    return table


def next_page_hint(cursor: str, args: list[str]) -> str:
    return "next page: jobqueue jobs list " + " ".join([*args, "--cursor", cursor])


def job_view(detail: JobDetail, width: int) -> Group:
    """The job's header (id, name, status, tags, times, counts) and a table of its tasks."""
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold", no_wrap=True)
    header.add_column(overflow="fold")
    done = sum(1 for t in detail.tasks if t.status in TASK_ENDED)
    header.add_row("job", detail.job_id)
    if detail.name:
        header.add_row("name", escape(detail.name))
    header.add_row("status", f"{_status(detail.status)}, {done} of {len(detail.tasks)} done")
    if detail.tags:
        header.add_row("tags", escape(", ".join(detail.tags)))
    header.add_row("priority", str(detail.priority))
    for label, value in (
        ("created", detail.created_at),
        ("started", detail.started_at),
        ("finished", detail.finished_at),
    ):
        if value is not None:
            header.add_row(label, when(value, None if label == "created" else detail.created_at))
    if detail.warnings:
        codes = status_counts([str(w.get("code")) for w in detail.warnings])
        header.add_row("warnings", escape(f"{codes} (--json lists them)"))
    tasks = _table(width)
    tasks.add_column("task", overflow="fold", max_width=32)
    tasks.add_column("status", no_wrap=True)
    tasks.add_column("attempt", justify="right", no_wrap=True)
    tasks.add_column("request", overflow="fold", ratio=1)
    tasks.add_column("after", overflow="fold")
    tasks.add_column("finished", no_wrap=True)
    for task in detail.tasks:
        tries = f"{task.attempt}/{task.max_attempts}" if task.max_attempts else str(task.attempt)
        request = f"{task.method or ''} {task.url or ''}".strip()
        if task.skip_reason:
            request = f"{request} (skipped: {task.skip_reason})"
        tasks.add_row(
            escape(task.name),
            _status(task.status),
            tries,
            escape(request),
            escape(", ".join(task.depends_on)),
            when(task.finished_at, detail.created_at),
        )
    return Group(header, "", tasks)
