"""Claims: a worker takes due tasks with a lease, in one ``UPDATE ... RETURNING``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.states import TaskStatus
from engine.store.attempts import begin_attempts
from engine.store.records import ClaimedTask
from engine.store.tables import tasks
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
    """The claim statement, then :func:`begin_attempts`.

    ``job_ids`` restricts it to those jobs (tasks an outcome made ready); ``jobs_running``
    says those jobs are running already, which spares the statement that marks them.
    """
    now = time.time()
    due = select(tasks.c.id).where(
        tasks.c.status == TaskStatus.QUEUED.value, tasks.c.next_attempt_at <= now
    )
    if job_ids is not None:
        due = due.where(tasks.c.job_id.in_(job_ids))
    # A CTE, not ``id IN (subquery)``: PostgreSQL may run an IN subquery more than once and
    # so claim more than ``limit`` rows; a locking CTE is evaluated exactly once.
    due_rows = (
        due.order_by(tasks.c.priority.desc(), tasks.c.next_attempt_at, tasks.c.id)
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
    await begin_attempts(conn, worker, claimed, now=now, mark_jobs_running=not jobs_running)
    return claimed
