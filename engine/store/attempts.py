"""Attempt bookkeeping shared by every write that starts or ends an attempt.

:func:`fence` is the one condition under which a write may end an attempt: the task still runs
that very attempt. A worker that wakes up late (its lease lost, the task claimed again) can then
never overwrite a newer attempt. :func:`begin_attempts` is what every claim path does once it has
taken tasks: the claim statement, direct dispatch at submission and promotion by an outcome.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.states import AttemptStatus, JobStatus, TaskStatus
from engine.store import events
from engine.store.records import ClaimedTask
from engine.store.tables import attempts, jobs, tasks


def fence(task_id: Any, attempt: Any) -> ColumnElement[bool]:
    """The task row is still running this attempt (values or bind parameters)."""
    return and_(
        tasks.c.id == task_id,
        tasks.c.attempt == attempt,
        tasks.c.status == TaskStatus.RUNNING.value,
    )


def fence_many(pairs: Sequence[tuple[int, int]]) -> ColumnElement[bool]:
    """:func:`fence` for a batch of (task id, attempt) pairs, in one condition."""
    return and_(
        tasks.c.id.in_([task_id for task_id, _ in pairs]),  # the primary key, for the planner
        tuple_(tasks.c.id, tasks.c.attempt).in_(pairs),
        tasks.c.status == TaskStatus.RUNNING.value,
    )


def attempt_fence(task_id: Any, attempt: Any) -> ColumnElement[bool]:
    """The attempt row has not ended yet (the same fence, on the attempts table)."""
    return and_(
        attempts.c.task_id == task_id,
        attempts.c.attempt == attempt,
        attempts.c.status == AttemptStatus.RUNNING.value,
    )


async def begin_attempts(
    conn: AsyncConnection,
    worker: str,
    claimed: Sequence[ClaimedTask],
    *,
    now: float | None = None,
    mark_jobs_running: bool = True,
) -> None:
    """The claim's bookkeeping: an attempt row per claimed task, and their jobs marked running
    (``mark_jobs_running=False`` when the caller knows they are, and spares the statement)."""
    if not claimed:
        return
    now = time.time() if now is None else now
    await conn.execute(
        insert(attempts),
        [
            {
                "task_id": c.id,
                "job_id": c.job_id,
                "attempt": c.attempt,
                "worker": worker,
                "status": AttemptStatus.RUNNING.value,
                "started_at": now,
            }
            for c in claimed
        ],
    )
    if mark_jobs_running:
        started = await conn.execute(
            update(jobs)
            .where(
                jobs.c.id.in_({c.job_id for c in claimed}),
                jobs.c.status == JobStatus.QUEUED.value,
            )
            .values(status=JobStatus.RUNNING.value, started_at=now)
            .returning(jobs.c.id)
        )
        for job_id in started.scalars():
            events.job_changed(conn, job_id, JobStatus.RUNNING.value, now)


async def end_attempt(
    conn: AsyncConnection,
    task_id: int,
    attempt: int,
    status: AttemptStatus,
    now: float,
    error: dict[str, Any] | None = None,
) -> None:
    """End one attempt row that is still running (the reaper's lost and expired attempts)."""
    await conn.execute(
        update(attempts)
        .where(attempt_fence(task_id, attempt))
        .values(status=status.value, finished_at=now, error=error)
    )
