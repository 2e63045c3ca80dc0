"""The CLI's commands against a running server (``--server URL``), through jobqueue_client."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from api.cli_local import (
    CliError,
    TaskView,
    load,
    print_hidden_failures,
    print_report,
    print_warnings,
)
from engine import JobInvalid, Problem, attach_marks
from jobqueue_client import (
    ApiError,
    InvalidJob,
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


def client_error(exc: JobQueueClientError, server: str) -> CliError:
    """``error: <code>: <message>`` for an error answer (exit 1); ``cannot reach`` (exit 2)."""
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
