"""The CLI's commands against a running server (``--server URL``), through jobqueue_client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from api.cli_local import load, print_report, task_table
from engine import JobInvalid, Problem
from jobqueue_client import ApiError, InvalidJob, JobQueue, TransportError


def describe(exc: Exception) -> str:
    """How the CLI words an error: the server's status and detail, or the transport's reason."""
    if isinstance(exc, ApiError):
        return f"server answered {exc.status_code}: {exc.detail}"
    if isinstance(exc, TransportError) and exc.__cause__ is not None:
        return str(exc.__cause__)
    return str(exc)


def _report_from_server(exc: InvalidJob) -> JobInvalid:
    def problem(d: dict[str, Any]) -> Problem:
        return Problem(
            code=str(d.get("code", "")),
            message=str(d.get("message", "")),
            location=str(d.get("location") or ""),
            task=d.get("task"),
            edge=d.get("edge"),
        )

    return JobInvalid([problem(e) for e in exc.errors], [problem(w) for w in exc.warnings])


def submit(path: Path, params: dict[str, str], server: str, *, wait: bool, console: Console) -> int:
    spec, loaded = load(path, params)
    with JobQueue(server) as jq:
        try:
            job = jq.submit(loaded.document)
        except InvalidJob as exc:
            print_report(console, _report_from_server(exc), loaded)
            return 1
        console.print(f"submitted {job.job_id} ({len(spec.tasks)} task(s)) to {server}")
        if not wait:
            return 0
        result = jq.wait(job.job_id)
    console.print(task_table(result.raw, f"job {job.job_id}"))
    console.print(f"job {job.job_id} {result.status}")
    return 0 if result.succeeded else 1
