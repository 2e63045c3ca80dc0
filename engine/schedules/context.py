"""The ``schedule`` template root: what a schedule's job sees, and where other jobs may not
look. A job created by a schedule renders with ``schedule.fire_time`` (the tick, ISO 8601 UTC),
``schedule.name`` and ``schedule.id``; any other job that reads ``schedule`` is refused at
creation, since the name would be undefined when its templates render."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engine.errors import Problem
from engine.templates import root_reads
from schemas.jobs import JobSpec

__all__ = ["FIELDS", "ROOT", "iso_utc", "schedule_context", "schedule_problems"]

ROOT = "schedule"
FIELDS = ("fire_time", "name", "id")


def iso_utc(moment: float) -> str:
    """UNIX seconds as ISO 8601 UTC with ``Z``, as everywhere in the API."""
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


def schedule_context(*, schedule_id: str, name: str, fire_time: float) -> dict[str, Any]:
    """The extra template roots of a job a schedule created."""
    return {ROOT: {"id": schedule_id, "name": name, "fire_time": iso_utc(fire_time)}}


def schedule_problems(spec: JobSpec, *, scheduled: bool) -> list[Problem]:
    """Reads of ``schedule`` that cannot render: any in a job that no schedule creates, and
    unknown fields (``schedule.fire_tim``) in a schedule's job."""
    problems = []
    for index, task in enumerate(spec.tasks):
        if not _mentions((task.url, task.headers, task.params, task.body, task.when)):
            continue  # the common case, decided without walking the templates twice
        base = f"/tasks/{index}"
        reads = [
            read
            for name in ("url", "headers", "params", "body")
            for read in root_reads(getattr(task, name), ROOT, pointer=f"{base}/{name}")
        ]
        if task.when:
            reads += root_reads(task.when, ROOT, pointer=f"{base}/when", condition=True)
        for pointer, parts in reads:
            problem = _problem(pointer, parts, task.name, scheduled)
            if problem is not None:
                problems.append(problem)
    return problems


def _mentions(value: Any) -> bool:
    """Whether any string in a JSON value contains the root's name."""
    if isinstance(value, str):
        return ROOT in value
    if isinstance(value, dict):
        return any(_mentions(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_mentions(v) for v in value)
    return False


def _problem(pointer: str, parts: tuple[Any, ...], task: str, scheduled: bool) -> Problem | None:
    if not scheduled:
        return Problem(
            code="unknown_variable",
            task=task,
            location=pointer,
            message="`schedule` is defined only for jobs that a schedule creates "
            "(POST /api/v1/schedules)",
            actual=ROOT,
        )
    if parts and isinstance(parts[0], str) and parts[0] not in FIELDS:
        return Problem(
            code="unknown_variable",
            task=task,
            location=pointer,
            message=f"`schedule.{parts[0]}` is not defined; a schedule's job can read "
            + ", ".join(f"schedule.{f}" for f in FIELDS),
            expected=list(FIELDS),
            actual=parts[0],
        )
    return None
