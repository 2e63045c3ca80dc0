"""Settle jobs inside a write transaction: promote or skip their pending tasks, finish them.

Called by every write that can end a task (an attempt's outcome, the reaper, a retry of the job)
so that downstream tasks are promoted or skipped, and the job is finished, in the same commit.
An outcome names the tasks that ended, and only their successors are visited
(:func:`engine.dag.successors.settle_from`, reading task states as it goes); the rarer writes
re-evaluate the whole job with :func:`engine.dag.scheduler.advance`.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.dag import SKIP_UPSTREAM, TaskState, advance, job_outcome
from engine.dag.scheduler import Transitions
from engine.dag.successors import JobShape, State, Steps, settle_from
from engine.states import TASK_TERMINAL, JobStatus, TaskStatus
from engine.store import events
from engine.store.children import end_waiting_tasks
from engine.store.dialects import lock_jobs
from engine.store.tables import jobs, tasks
from engine.store.webhooks import enqueue_webhooks
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

_queue_returning = _queue_stmt.returning(tasks.c.job_id, tasks.c.name, tasks.c.attempt)


async def finish_jobs(conn: AsyncConnection, finished: dict[str, JobStatus], now: float) -> bool:
    """Mark jobs ended; their TTL clock (``expires_at``) starts now. The sub-workflow tasks
    waiting for them end too; true when that made tasks of their parent jobs ready. Their
    completion webhooks are enqueued in the same transaction, so a restart never loses one."""
    by_status: dict[JobStatus, list[str]] = defaultdict(list)
    for job_id, status in finished.items():
        by_status[status].append(job_id)
    children: list[Row[Any]] = []
    for status, ids in by_status.items():
        ended = await conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(ids), jobs.c.status.in_(_ACTIVE_JOB))
            .values(
                status=status.value,
                finished_at=now,
                expires_at=jobs.c.ttl_seconds + now,
            )
            .returning(jobs.c.id, jobs.c.on_complete, jobs.c.parent_job_id, jobs.c.parent_task)
        )
        rows = ended.all()
        for row in rows:
            events.job_changed(conn, row.id, status.value, now)
        await enqueue_webhooks(conn, rows, status.value, now)
        children += [row for row in rows if row.parent_job_id is not None]
    if children:
        # a sub-workflow task waiting for one of these jobs ends with it
        parents = await end_waiting_tasks(conn, finished, now, children)
        if parents:
            return await settle(conn, parents, now)
    return False


async def settle(
    conn: AsyncConnection,
    job_ids: Iterable[str],
    now: float,
    ended: Mapping[str, Mapping[int, State]] | None = None,
) -> bool:
    """Promote / skip pending tasks of these jobs and finish the jobs that ended.

    With ``ended`` (job id -> its tasks that just ended -> the ``(status, skip_reason)`` they
    ended in), only the successors of those tasks are looked at; without it, every task of
    the jobs. Returns true when tasks were queued (the caller wakes the workers after commit).
    """
    ids = sorted(set(job_ids))
    if not ids:
        return False
    if ended is None:
        return await _settle_whole(conn, ids, now)
    await lock_jobs(conn, ids)
    shapes = await _shapes(conn, ids)
    queue: list[int] = []
    skip: list[int] = []
    idle: list[str] = []
    ttl: dict[int, float | None] = {}
    for job_id in ids:
        graph = _graph(job_id, shapes[job_id])
        result = await _drive(conn, settle_from(graph, ended.get(job_id, {})))
        queue.extend(result.queue)
        skip.extend(result.skip)
        ttl.update((i, shapes[job_id][i].ttl_seconds) for i in result.queue)
        if not result.queue:
            idle.append(job_id)  # a job that just queued a task has not ended
    await _write(conn, queue, skip, ttl, now)
    finished = {j: s for j in idle if (s := await _final_status(conn, j)) is not None}
    more = await finish_jobs(conn, finished, now) if finished else False
    return bool(queue) or more


async def _drive(conn: AsyncConnection, steps: Steps) -> Transitions:
    """Answer the task-state reads of :func:`settle_from` from the database."""
    try:
        need = next(steps)
        while True:
            need = steps.send(await _states(conn, need))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


_READ_CHUNK = 2000


async def _states(conn: AsyncConnection, ids: list[int]) -> dict[int, State]:
    found: dict[int, State] = {}
    for start in range(0, len(ids), _READ_CHUNK):
        rows = await conn.execute(
            select(tasks.c.id, tasks.c.status, tasks.c.skip_reason).where(
                tasks.c.id.in_(ids[start : start + _READ_CHUNK])
            )
        )
        found.update((r.id, (TaskStatus(r.status), r.skip_reason)) for r in rows)
    return found


_TERMINAL_VALUES = sorted(s.value for s in TASK_TERMINAL)


async def _final_status(conn: AsyncConnection, job_id: str) -> JobStatus | None:
    """The job's final status once none of its tasks is active (one indexed probe first)."""
    # a for_each task's instances are not the job's tasks: their parent stands for them
    top = (tasks.c.job_id == job_id, tasks.c.parent_id.is_(None))
    active = await conn.execute(
        select(tasks.c.id).where(*top, tasks.c.status.not_in(_TERMINAL_VALUES)).limit(1)
    )
    if active.first() is not None:
        return None
    rows = await conn.execute(select(tasks.c.status).where(*top).distinct())
    return job_outcome([TaskStatus(r.status) for r in rows])


async def _write(
    conn: AsyncConnection,
    queue: list[int],
    skip: list[int],
    ttl: Mapping[int, float | None],
    now: float,
) -> None:
    if queue:
        params = [{"b_id": i, "b_now": now, "b_expires": _expiry(now, ttl[i])} for i in queue]
        if len(params) == 1:  # a chain's hop: the statement itself says what it queued
            queued = (await conn.execute(_queue_returning, params[0])).all()
        else:
            await conn.execute(_queue_stmt, params)
            queued = (
                await conn.execute(
                    select(tasks.c.job_id, tasks.c.name, tasks.c.attempt)
                    .where(
                        tasks.c.id.in_(queue),
                        tasks.c.status == TaskStatus.QUEUED.value,
                        tasks.c.ready_at == now,
                    )
                    .order_by(tasks.c.id)
                )
            ).all()
        for r in queued:
            events.task_changed(conn, r.job_id, r.name, TaskStatus.QUEUED.value, r.attempt, now)
    if skip:
        skipped = await conn.execute(
            update(tasks)
            .where(tasks.c.id.in_(skip), tasks.c.status == TaskStatus.PENDING.value)
            .values(status=TaskStatus.SKIPPED.value, skip_reason=SKIP_UPSTREAM, finished_at=now)
            .returning(tasks.c.job_id, tasks.c.name, tasks.c.attempt)
        )
        for r in skipped:
            events.task_changed(conn, r.job_id, r.name, TaskStatus.SKIPPED.value, r.attempt, now)


async def _settle_whole(conn: AsyncConnection, ids: list[str], now: float) -> bool:
    """Every pending task of the jobs re-evaluated (a retry of the job, the reaper)."""
    for job_id in ids:
        _GRAPHS.pop(job_id, None)  # statuses went back: the scan hints start over
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
    await _write(conn, queue, skip, ttl, now)
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
#: job id -> its graph indexed by task id (children, parents) and scan hints; same bound
_GRAPHS: OrderedDict[str, JobShape] = OrderedDict()


def _graph(job_id: str, shape: dict[int, _TaskShape]) -> JobShape:
    graph = _GRAPHS.get(job_id)
    if graph is None:
        graph = JobShape.build(
            {i: t.upstream for i, t in shape.items()},
            {i: t.name for i, t in shape.items()},
            {i: t.trigger_rule for i, t in shape.items()},
        )
        _GRAPHS[job_id] = graph
    _GRAPHS.move_to_end(job_id)
    while len(_GRAPHS) > _SHAPES_MAX:
        _GRAPHS.popitem(last=False)
    return graph


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
