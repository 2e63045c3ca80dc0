"""Claims: a worker takes due tasks with a lease, in one ``UPDATE ... RETURNING``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Select, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.states import JobStatus, TaskStatus
from engine.store import events
from engine.store.attempts import begin_attempts
from engine.store.records import ClaimedTask
from engine.store.tables import jobs, tasks
from engine.store.writer import WriteOp


@dataclass(frozen=True, kw_only=True)
class Dispatch:
    """Claim tasks for this worker inside another write's transaction (direct dispatch).

    A submission inserts its ready tasks already claimed; a recorded outcome claims the tasks it
    made ready. The worker starts them when that commit returns, with no claim transaction of
    its own (on the idle path and along a chain, the largest saving).
    """

    worker: str
    limit: int
    lease_seconds: float
    #: filled by the write with the tasks it claimed for ``worker``. The worker reads it after
    #: the write returns, raises or is canceled: a claimed task must reach it in every case.
    claimed: list[ClaimedTask] = field(default_factory=list)


_CLAIM_RETURNING = (
    tasks.c.id,
    tasks.c.job_id,
    tasks.c.name,
    tasks.c.attempt,
    tasks.c.tries,
    tasks.c.max_attempts,
    tasks.c.spec,
    tasks.c.upstream,
    tasks.c.templated,
    tasks.c.expires_at,
)


class ClaimOp(WriteOp[list[ClaimedTask]]):
    """Claim up to ``limit`` due tasks in one ``UPDATE ... RETURNING``.

    The inner select takes row locks with SKIP LOCKED on PostgreSQL (nothing on SQLite, where
    ``BEGIN IMMEDIATE`` already serialises writers); the outer ``status = 'queued'`` makes a lost
    race claim nothing rather than claim twice.
    """

    batchable = False

    def __init__(
        self,
        *,
        worker: str,
        limit: int,
        lease_seconds: float,
        job_ids: list[str] | None = None,
    ) -> None:
        self.worker = worker
        self.limit = limit
        self.lease_seconds = lease_seconds
        self.job_ids = job_ids

    async def apply(self, conn: AsyncConnection) -> list[ClaimedTask]:
        return await claim_tasks(
            conn,
            worker=self.worker,
            limit=self.limit,
            lease_seconds=self.lease_seconds,
            job_ids=self.job_ids,
        )


async def claim_tasks(
    conn: AsyncConnection,
    *,
    worker: str,
    limit: int,
    lease_seconds: float,
    job_ids: list[str] | None = None,
    jobs_running: bool = False,
) -> list[ClaimedTask]:
    """The claim statement(s), then :func:`begin_attempts`.

    ``job_ids`` restricts it to those jobs (tasks an outcome made ready); ``jobs_running``
    says those jobs are running already, which spares the statement that marks them.

    Without ``job_ids``, jobs that have not started yet go first (the oldest, among tasks of
    the highest priority due): a job of 10,000 ready tasks cannot make a job submitted after
    it wait for all of them. A second statement fills what is left in the usual order.
    """
    now = time.time()
    if job_ids is not None:
        claimed = await _claim(conn, worker, limit, lease_seconds, now, job_ids=job_ids)
    else:
        claimed = await _claim(conn, worker, limit, lease_seconds, now, new_jobs_first=True)
        if len(claimed) < limit:
            claimed += await _claim(conn, worker, limit - len(claimed), lease_seconds, now)
    await begin_attempts(conn, worker, claimed, now=now, mark_jobs_running=not jobs_running)
    return claimed


def _due(now: float) -> Select[tuple[int]]:
    return select(tasks.c.id).where(
        tasks.c.status == TaskStatus.QUEUED.value, tasks.c.next_attempt_at <= now
    )


#: how many not yet started jobs one claim looks at first
_NEW_JOBS = 64


async def _claim(
    conn: AsyncConnection,
    worker: str,
    limit: int,
    lease_seconds: float,
    now: float,
    *,
    job_ids: list[str] | None = None,
    new_jobs_first: bool = False,
) -> list[ClaimedTask]:
    due = _due(now)
    # ``priority + 0`` where the candidates are some jobs' tasks: the order then cannot come
    # from the queue index, so SQLite finds those jobs' queued tasks by (job_id, status) and
    # sorts only them instead of walking the whole queue to reach them.
    priority: ColumnElement[int] = tasks.c.priority
    if job_ids is not None:
        due = due.where(tasks.c.job_id.in_(job_ids))
        priority = priority + 0
    if new_jobs_first:
        top = (
            _due(now)
            .with_only_columns(tasks.c.priority)
            .order_by(tasks.c.priority.desc())
            .limit(1)
            .scalar_subquery()
        )
        new_jobs = (
            select(jobs.c.id)
            .where(jobs.c.status == JobStatus.QUEUED.value)
            .order_by(jobs.c.created_at)
            .limit(_NEW_JOBS)
        )
        priority = priority + 0
        due = due.where(priority >= top, tasks.c.job_id.in_(new_jobs))
    # A CTE, not ``id IN (subquery)``: PostgreSQL may run an IN subquery more than once and
    # so claim more than ``limit`` rows; a locking CTE is evaluated exactly once.
    due_rows = (
        due.order_by(priority.desc(), tasks.c.next_attempt_at, tasks.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    stmt = (
        update(tasks)
        .where(tasks.c.id == due_rows.c.id, tasks.c.status == TaskStatus.QUEUED.value)
        .values(
            status=TaskStatus.RUNNING.value,
            attempt=tasks.c.attempt + 1,
            lease_owner=worker,
            lease_expires_at=now + lease_seconds,
            started_at=now,
        )
        .returning(*_CLAIM_RETURNING)
    )
    claimed = [ClaimedTask.from_row(r) for r in (await conn.execute(stmt)).all()]
    for c in claimed:
        events.task_changed(conn, c.job_id, c.name, TaskStatus.RUNNING.value, c.attempt, now)
    return claimed
