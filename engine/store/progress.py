"""Apply :func:`engine.dag.scheduler.advance` inside a write transaction.

Called by every write that can end a task (an attempt's outcome, the reaper, a retry of the job)
so that downstream tasks are promoted or skipped, and the job is finished, in the same commit.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.dag import SKIP_UPSTREAM, TaskState, advance
from engine.states import JobStatus, TaskStatus
from engine.store.tables import jobs, tasks
from schemas.jobs import TriggerRule

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


async def finish_jobs(conn: AsyncConnection, finished: dict[str, JobStatus], now: float) -> bool:
    """Mark jobs ended; their TTL clock (``expires_at``) starts now. The sub-workflow tasks
    waiting for them end too; true when that made tasks of their parent jobs ready."""
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
    if finished:
        # a sub-workflow task waiting for one of these jobs ends with it
        from engine.store.children import end_waiting_tasks

        parents = await end_waiting_tasks(conn, finished, now)
        if parents:
            return await settle(conn, parents, now)
    return False


async def settle(conn: AsyncConnection, job_ids: Iterable[str], now: float) -> bool:
    """Promote / skip pending tasks of these jobs and finish the jobs that ended.

    Returns true when tasks were queued (the caller wakes the workers after commit).
    """
    ids = sorted(set(job_ids))
    if not ids:
        return False
    shapes = await _shapes(conn, ids)
    rows = (
        await conn.execute(
            select(tasks.c.id, tasks.c.job_id, tasks.c.status, tasks.c.skip_reason).where(
                tasks.c.job_id.in_(ids), tasks.c.parent_id.is_(None)
            )
        )
    ).all()
    per_job: dict[str, list[TaskState]] = defaultdict(list)
    ttl: dict[int, float | None] = {}
    for row in rows:
        shape = shapes[row.job_id][row.id]
        per_job[row.job_id].append(
            TaskState(
                id=row.id,
                name=shape.name,
                status=TaskStatus(row.status),
                upstream=shape.upstream,
                trigger_rule=shape.trigger_rule,
                skip_reason=row.skip_reason,
            )
        )
        ttl[row.id] = shape.ttl_seconds
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
            [{"b_id": i, "b_now": now, "b_expires": _expiry(now, ttl[i])} for i in queue],
        )
    if skip:
        await conn.execute(
            update(tasks)
            .where(tasks.c.id.in_(skip), tasks.c.status == TaskStatus.PENDING.value)
            .values(status=TaskStatus.SKIPPED.value, skip_reason=SKIP_UPSTREAM, finished_at=now)
        )
    more = await finish_jobs(conn, finished, now) if finished else False
    return bool(queue) or more


def _expiry(now: float, ttl: float | None) -> float | None:
    return None if ttl is None else now + ttl


@dataclass(frozen=True)
class _TaskShape:
    """What never changes about a task once its job is stored."""

    name: str
    upstream: tuple[str, ...]
    trigger_rule: TriggerRule
    ttl_seconds: float | None


#: job id -> task id -> shape. Jobs are immutable in shape and their ids globally unique, so a
#: bounded process-wide cache is safe; it spares a big DAG re-reading (and re-parsing) its
#: graph on every batch of outcomes.
_SHAPES: OrderedDict[str, dict[int, _TaskShape]] = OrderedDict()
_SHAPES_MAX = 256


async def _shapes(conn: AsyncConnection, job_ids: list[str]) -> dict[str, dict[int, _TaskShape]]:
    found = {j: _SHAPES[j] for j in job_ids if j in _SHAPES}
    missing = [j for j in job_ids if j not in found]
    if missing:
        rows = await conn.execute(
            select(
                tasks.c.id,
                tasks.c.job_id,
                tasks.c.name,
                tasks.c.upstream,
                tasks.c.trigger_rule,
                tasks.c.ttl_seconds,
            ).where(tasks.c.job_id.in_(missing), tasks.c.parent_id.is_(None))
        )
        for row in rows:
            found.setdefault(row.job_id, {})[row.id] = _TaskShape(
                row.name, tuple(row.upstream or ()), TriggerRule(row.trigger_rule), row.ttl_seconds
            )
        for job_id in missing:
            _SHAPES[job_id] = found.setdefault(job_id, {})
    for job_id in job_ids:
        _SHAPES.move_to_end(job_id)
    while len(_SHAPES) > _SHAPES_MAX:
        _SHAPES.popitem(last=False)
    return found
