"""The CLI's commands against a running server (``--server URL``), through jobqueue_client."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console

from api.cli_local import CliError, load, print_report, task_table
from engine import JobInvalid, Problem
from jobqueue_client import (
    ApiError,
    InvalidJob,
    JobQueue,
    JobQueueClientError,
    TransportError,
)


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


# --------------------------------------------------------------------------- submit


def submit(
    jq: JobQueue, path: Path, params: dict[str, str], *, wait: bool, console: Console
) -> int:
    spec, loaded = load(path, params)
    try:
        job = jq.submit(loaded.document)
    except InvalidJob as exc:
        print_report(console, _report_from_server(exc), loaded)
        return 1
    console.print(f"submitted {job.job_id} ({len(spec.tasks)} task(s)) to {jq.base_url}")
    if not wait:
        return 0
    result = jq.wait(job.job_id)
    console.print(task_table(result.raw, f"job {job.job_id}"))
    console.print(f"job {job.job_id} {result.status}")
    return 0 if result.succeeded else 1
