"""Task transitions as log lines: one line per status change, with its ids as structured fields
(``JOBQUEUE_LOG_FORMAT=json`` writes them as JSON keys). No headers or bodies: never a secret."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from engine.states import TaskStatus
from engine.store import Transition

log = logging.getLogger("jobqueue.worker")


def log_transition(
    job_id: str,
    task: str,
    attempt: int,
    old: TaskStatus,
    new: TaskStatus,
    *,
    duration_ms: float | None = None,
    error_type: str | None = None,
    level: int = logging.INFO,
) -> None:
    """One line per task status change, with its ids as structured fields."""
    if not log.isEnabledFor(level):
        return
    took = f" in {duration_ms:.0f} ms" if duration_ms is not None else ""
    why = f" ({error_type})" if error_type else ""
    log.log(
        level,
        "job %s task %s attempt %d: %s -> %s%s%s",
        job_id,
        task,
        attempt,
        old.value,
        new.value,
        took,
        why,
        extra={
            "job_id": job_id,
            "task": task,
            "attempt": attempt,
            "old_status": old.value,
            "new_status": new.value,
            "duration_ms": duration_ms,
            "error_type": error_type,
        },
    )


def log_sweep(transitions: Sequence[Transition]) -> None:
    """The reaper's changes: lost leases are warnings, a task lost too often an error."""
    for t in transitions:
        level = logging.INFO
        if t.error_type == "lost":
            level = logging.ERROR if t.new is TaskStatus.FAILED else logging.WARNING
        log_transition(
            t.job_id, t.task, t.attempt, t.old, t.new, error_type=t.error_type, level=level
        )
