"""Apply :func:`engine.scheduler.advance` inside a write transaction.

Called by every write that can end a task (an attempt's outcome, the reaper, a retry of the job)
so that downstream tasks are promoted or skipped, and the job is finished, in the same commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.jobs import TriggerRule

from ..scheduler import SKIP_UPSTREAM, TaskState, advance
from ..states import JOB_TERMINAL, JobStatus, TaskStatus
from .tables import jobs, tasks

_ACTIVE_JOB = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]

_queue_stmt = (
    update(tasks)
    .where(tasks.c.id == bindparam("b_id"), tasks.c.status == TaskStatus.PENDING.value)
    .values(
        status=TaskStatus.QUEUED.value,
        ready_at=bindparam("b_now"),
        next_attempt_at=bindparam("b_now"),
        expires_at=bindparam("b_expires"),
    )
)


async def finish_jobs(conn: AsyncConnection, finished: dict[str, JobStatus], now: float) -> None:
    """Mark jobs ended; their TTL clock (``expires_at``) starts now."""
    by_status: dict[JobStatus, list[str]] = defaultdict(list)
    for job_id, status in finished.items():
        by_status[status].append(job_id)
    for status, ids in by_status.items():
        await conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(ids), jobs.c.status.in_(_ACTIVE_JOB))
            .values(
                status=status.value,
                finished_at=now,
                expires_at=jobs.c.ttl_seconds + now,
            )
        )


async def settle(conn: AsyncConnection, job_ids: Iterable[str], now: float) -> bool:
    """Promote / skip pending tasks of these jobs and finish the jobs that ended.

    Returns true when tasks were queued (the caller wakes the workers after commit).
    """
    ids = sorted(set(job_ids))
    if not ids:
        return False
    rows = (
        await conn.execute(
            select(
                tasks.c.id,
                tasks.c.job_id,
                tasks.c.name,
                tasks.c.status,
                tasks.c.upstream,
                tasks.c.trigger_rule,
                tasks.c.skip_reason,
                tasks.c.ttl_seconds,
            ).where(tasks.c.job_id.in_(ids))
        )
    ).all()
    per_job: dict[str, list[TaskState]] = defaultdict(list)
    ttl: dict[int, float | None] = {}
    for row in rows:
        per_job[row.job_id].append(
            TaskState(
                id=row.id,
                name=row.name,
                status=TaskStatus(row.status),
                upstream=tuple(row.upstream or ()),
                trigger_rule=TriggerRule(row.trigger_rule),
                skip_reason=row.skip_reason,
            )
        )
        ttl[row.id] = row.ttl_seconds
    queue: list[int] = []
    skip: list[int] = []
    finished: dict[str, JobStatus] = {}
    for job_id, states in per_job.items():
        result = advance(states)
        queue.extend(result.queue)
        skip.extend(result.skip)
        if result.job_status is not None:
            finished[job_id] = result.job_status
    if queue:
        await conn.execute(
            _queue_stmt,
            [
                {"b_id": i, "b_now": now, "b_expires": None if ttl[i] is None else now + ttl[i]}
                for i in queue
            ],
        )
    if skip:
        await conn.execute(
            update(tasks)
            .where(tasks.c.id.in_(skip), tasks.c.status == TaskStatus.PENDING.value)
            .values(status=TaskStatus.SKIPPED.value, skip_reason=SKIP_UPSTREAM, finished_at=now)
        )
    if finished:
        await finish_jobs(conn, finished, now)
    return bool(queue)


def is_terminal_job(status: str) -> bool:
    return JobStatus(status) in JOB_TERMINAL
