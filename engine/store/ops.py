"""The hot-path writes: submit, claim, record an outcome, renew leases, hand tasks back.

Each is a :class:`~engine.store.writer.WriteOp`; submissions and outcomes batch (``apply_many``)
so that N jobs cost a handful of statements and one commit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import IdempotencyMismatch
from ..states import AttemptStatus, JobStatus, TaskStatus
from .progress import finish_jobs, settle
from .records import ClaimedTask, Outcome
from .tables import attempts, job_interfaces, job_tags, jobs, tasks
from .writer import WriteOp

IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600


@dataclass(kw_only=True)
class NewJob:
    """Rows of one accepted job, ready to insert."""

    job: dict[str, Any]
    tasks: list[dict[str, Any]]
    tags: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Dispatch:
    """Claim the new job's ready tasks for this worker in the submitting transaction.

    An idle worker in the same process then starts them as soon as the job is committed,
    without a claim transaction of its own (the idle latency's largest part).
    """

    worker: str
    limit: int
    lease_seconds: float


@dataclass(frozen=True, kw_only=True)
class Submitted:
    job_id: str
    status: str
    existing: bool = False
    #: tasks claimed by direct dispatch, for the worker named in the op's :class:`Dispatch`
    claimed: tuple[ClaimedTask, ...] = ()


class SubmitOp(WriteOp[Submitted]):
    def __init__(self, new: NewJob, dispatch: Dispatch | None = None) -> None:
        self.new = new
        self.dispatch = dispatch
        #: rows marked as claimed by direct dispatch (kept if the op is applied again alone)
        self.preclaimed: list[dict[str, Any]] | None = None

    async def _existing(self, conn: AsyncConnection) -> Submitted | None:
        key = self.new.job.get("idempotency_key")
        if not key:
            return None
        row = (
            await conn.execute(
                select(jobs.c.id, jobs.c.status, jobs.c.request_hash, jobs.c.created_at).where(
                    jobs.c.owner == self.new.job["owner"], jobs.c.idempotency_key == key
                )
            )
        ).first()
        if row is None:
            return None
        if row.created_at < self.new.job["created_at"] - IDEMPOTENCY_WINDOW_SECONDS:
            await conn.execute(update(jobs).where(jobs.c.id == row.id).values(idempotency_key=None))
            return None
        if row.request_hash != self.new.job.get("request_hash"):
            raise IdempotencyMismatch(
                f"Idempotency-Key {key!r} was used for job {row.id} with a different body"
            )
        return Submitted(job_id=row.id, status=row.status, existing=True)

    @classmethod
    async def apply_many(cls, conn: AsyncConnection, ops: Sequence[Any]) -> list[Any]:
        results: list[Submitted] = []
        fresh: list[SubmitOp] = []
        seen: dict[tuple[str, str], Submitted] = {}
        for op in ops:
            job = op.new.job
            key = (job["owner"], job.get("idempotency_key") or "")
            if key[1] and key in seen:
                results.append(Submitted(job_id=seen[key].job_id, status="queued", existing=True))
                continue
            existing = await op._existing(conn)
            if existing is None:
                fresh.append(op)
                existing = Submitted(job_id=job["id"], status=job["status"])
            if key[1]:
                seen[key] = existing
            results.append(existing)
        if fresh:
            dispatched = _preclaim([op for op in fresh if op.dispatch is not None])
            ids = await _insert_jobs(conn, [op.new for op in fresh], {id(r) for _, r in dispatched})
            claimed = await _record_dispatch(
                conn, [(w, row, ids[id(row)]) for w, row in dispatched]
            )
            for op in fresh:
                op.wakes = _ready_count(op.new) > 0
            results = [
                replace(r, claimed=tuple(claimed.get(r.job_id, ()))) if not r.existing else r
                for r in results
            ]
        return results

    async def apply(self, conn: AsyncConnection) -> Submitted:
        (result,) = await self.apply_many(conn, [self])
        return result


def _ready_count(new: NewJob) -> int:
    return sum(1 for t in new.tasks if t["status"] == TaskStatus.QUEUED.value)


def _preclaim(ops: list[SubmitOp]) -> list[tuple[str, dict[str, Any]]]:
    """Direct dispatch: the job is inserted already claimed for the waiting worker.

    Up to the op's ``limit`` of its due root tasks are written as running (attempt 1, lease held),
    and the job as running; no claim statement is needed. Returns (worker, task row) pairs.
    """
    now = time.time()
    out: list[tuple[str, dict[str, Any]]] = []
    for op in ops:
        dispatch = op.dispatch
        assert dispatch is not None
        if op.preclaimed is not None:
            out += [(dispatch.worker, row) for row in op.preclaimed]
            continue
        op.preclaimed = []
        budget = dispatch.limit
        for row in op.new.tasks:
            due = row["status"] == TaskStatus.QUEUED.value and row["next_attempt_at"] <= now
            if budget and due:
                row.update(
                    status=TaskStatus.RUNNING.value,
                    attempt=1,
                    lease_owner=dispatch.worker,
                    lease_expires_at=now + dispatch.lease_seconds,
                    started_at=now,
                )
                budget -= 1
                op.preclaimed.append(row)
                out.append((dispatch.worker, row))
        if budget < dispatch.limit:
            op.new.job.update(status=JobStatus.RUNNING.value, started_at=now)
    return out


async def _record_dispatch(
    conn: AsyncConnection, dispatched: list[tuple[str, dict[str, Any], int]]
) -> dict[str, list[ClaimedTask]]:
    """Attempt rows for the dispatched tasks, and the tasks as the worker needs them."""
    by_job: dict[str, list[ClaimedTask]] = {}
    if not dispatched:
        return by_job
    rows = []
    for worker, row, task_id in dispatched:
        rows.append(
            {
                "task_id": task_id,
                "job_id": row["job_id"],
                "attempt": 1,
                "worker": worker,
                "status": AttemptStatus.RUNNING.value,
                "started_at": row["started_at"],
            }
        )
        by_job.setdefault(row["job_id"], []).append(
            ClaimedTask(
                id=task_id,
                job_id=row["job_id"],
                name=row["name"],
                attempt=1,
                tries=row["tries"],
                max_attempts=row["max_attempts"],
                spec=row["spec"],
                upstream=tuple(row["upstream"]),
                templated=row["templated"],
                expires_at=row["expires_at"],
            )
        )
    await conn.execute(insert(attempts), rows)
    return by_job


_insert_tasks = insert(tasks).returning(tasks.c.id, sort_by_parameter_order=True)


async def _insert_jobs(
    conn: AsyncConnection, new: list[NewJob], wanted: set[int]
) -> dict[int, int]:
    """Insert the rows. ``wanted``: ``id()`` of the task rows whose new ids the caller needs
    (RETURNING costs: plain rows go in one executemany); returns ``{id(row): task id}``."""
    await conn.execute(insert(jobs), [n.job for n in new])
    rows = [t for n in new for t in n.tasks]
    plain = [r for r in rows if id(r) not in wanted]
    if plain:
        await conn.execute(insert(tasks), plain)
    returning = [r for r in rows if id(r) in wanted]
    ids: dict[int, int] = {}
    if returning:
        result = await conn.execute(_insert_tasks, returning)
        ids = {id(row): r.id for row, r in zip(returning, result, strict=True)}
    tag_rows = [{"job_id": n.job["id"], "tag": tag} for n in new for tag in n.tags]
    if tag_rows:
        await conn.execute(insert(job_tags), tag_rows)
    iface_rows = [{"job_id": n.job["id"], "interface": i} for n in new for i in n.interfaces]
    if iface_rows:
        await conn.execute(insert(job_interfaces), iface_rows)
    return ids


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

    def __init__(self, *, worker: str, limit: int, lease_seconds: float) -> None:
        self.worker = worker
        self.limit = limit
        self.lease_seconds = lease_seconds

    async def apply(self, conn: AsyncConnection) -> list[ClaimedTask]:
        return await claim_tasks(
            conn, worker=self.worker, limit=self.limit, lease_seconds=self.lease_seconds
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
    """The claim statement and its bookkeeping (attempt rows, jobs marked running).

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
        .where(tasks.c.id == due_rows.c.id, tasks.c.status == "queued")
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
    if not claimed:
        return []
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
    if not jobs_running:
        await conn.execute(
            update(jobs)
            .where(
                jobs.c.id.in_({c.job_id for c in claimed}),
                jobs.c.status == JobStatus.QUEUED.value,
            )
            .values(status=JobStatus.RUNNING.value, started_at=now)
        )
    return claimed


_record_task = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("b_id"),
        tasks.c.attempt == bindparam("b_attempt"),
        tasks.c.status == TaskStatus.RUNNING.value,
    )
    .values(
        status=bindparam("b_status"),
        tries=tasks.c.tries + bindparam("b_inc"),
        response_status=bindparam("b_rstatus"),
        response_headers=bindparam("b_rheaders"),
        response_body=bindparam("b_rbody"),
        response_truncated=bindparam("b_rtrunc"),
        error=bindparam("b_error"),
        duration_ms=bindparam("b_duration"),
        finished_at=bindparam("b_finished"),
        next_attempt_at=bindparam("b_next"),
        skip_reason=bindparam("b_skip"),
        lease_owner=None,
        lease_expires_at=None,
    )
)

_record_task_returning = _record_task.returning(tasks.c.id)

_record_attempt = (
    update(attempts)
    .where(attempts.c.task_id == bindparam("b_id"), attempts.c.attempt == bindparam("b_attempt"))
    .values(
        status=bindparam("b_astatus"),
        finished_at=bindparam("b_afinished"),
        duration_ms=bindparam("b_duration"),
        response_status=bindparam("b_rstatus"),
        error=bindparam("b_error"),
    )
)


def _outcome_params(o: Outcome) -> dict[str, Any]:
    final = o.status is not TaskStatus.QUEUED
    return {
        "b_id": o.task_id,
        "b_attempt": o.attempt,
        "b_status": o.status.value,
        "b_inc": 1 if o.counts else 0,
        "b_rstatus": o.response_status,
        "b_rheaders": o.response_headers,
        "b_rbody": o.response_body,
        "b_rtrunc": o.response_truncated,
        "b_error": o.error,
        "b_duration": o.duration_ms,
        "b_finished": o.finished_at if final else None,
        "b_next": o.next_attempt_at,
        "b_skip": o.skip_reason,
        "b_astatus": o.attempt_status.value,
        "b_afinished": o.finished_at,
    }


class CompleteOp(WriteOp[bool]):
    """Record how an attempt ended, fenced on its attempt number; returns false when stale.

    With a :class:`Dispatch`, tasks of the same job that this outcome made ready are claimed for
    that worker in the same transaction; they are left in :attr:`claimed`.
    """

    def __init__(self, outcome: Outcome, dispatch: Dispatch | None = None) -> None:
        self.outcome = outcome
        self.dispatch = dispatch
        self.claimed: list[ClaimedTask] = []

    async def apply(self, conn: AsyncConnection) -> bool:
        (result,) = await self.apply_many(conn, [self])
        return result

    @classmethod
    async def apply_many(cls, conn: AsyncConnection, ops: Sequence[Any]) -> list[Any]:
        outcomes: list[Outcome] = [op.outcome for op in ops]
        for op in ops:
            op.claimed = []  # a batch that failed is applied again op by op
        if len(outcomes) == 1:
            # One outcome (the idle path): the fenced UPDATE itself says whether it applied.
            params = [_outcome_params(outcomes[0])]
            applied = (await conn.execute(_record_task_returning, params[0])).first()
            valid = outcomes if applied is not None else []
        else:
            valid = await _live_outcomes(conn, outcomes)
            params = [_outcome_params(o) for o in valid]
            if params:
                await conn.execute(_record_task, params)
        if valid:
            await conn.execute(_record_attempt, params)
            now = time.time()
            solo = {o.job_id: o for o in valid if o.solo and o.status is not TaskStatus.QUEUED}
            if solo:
                await finish_jobs(conn, {j: _solo_job_status(o) for j, o in solo.items()}, now)
            multi = {o.job_id for o in valid if not o.solo and o.status is not TaskStatus.QUEUED}
            if await settle(conn, multi, now):
                ops[0].wakes = not await _claim_promoted(conn, ops, multi)
        valid_ids = {(o.task_id, o.attempt) for o in valid}
        return [(o.task_id, o.attempt) in valid_ids for o in outcomes]


async def _claim_promoted(conn: AsyncConnection, ops: Sequence[Any], jobs_: set[str]) -> bool:
    """Hand tasks just made ready to the worker that asked (first dispatching op's worker).

    True when every newly ready task found an owner here (no other worker needs waking).
    """
    asking = [op for op in ops if op.dispatch is not None and op.outcome.job_id in jobs_]
    if not asking:
        return False
    first = asking[0].dispatch
    asking = [op for op in asking if op.dispatch.worker == first.worker]
    claimed = await claim_tasks(
        conn,
        worker=first.worker,
        limit=sum(op.dispatch.limit for op in asking),
        lease_seconds=first.lease_seconds,
        job_ids=sorted({op.outcome.job_id for op in asking}),
        jobs_running=True,
    )
    by_job = {op.outcome.job_id: op for op in asking}
    for task in claimed:
        # Every claimed task must reach the worker (it starts them all, whoever carries them).
        by_job.get(task.job_id, asking[0]).claimed.append(task)
    return len(claimed) < sum(op.dispatch.limit for op in asking)


async def _live_outcomes(conn: AsyncConnection, outcomes: list[Outcome]) -> list[Outcome]:
    """The outcomes whose task is still running the same attempt (the fence, for a batch)."""
    rows = (
        await conn.execute(
            select(tasks.c.id, tasks.c.attempt, tasks.c.status)
            .where(tasks.c.id.in_([o.task_id for o in outcomes]))
            .with_for_update()
        )
    ).all()
    live = {(r.id, r.attempt) for r in rows if r.status == TaskStatus.RUNNING.value}
    return [o for o in outcomes if (o.task_id, o.attempt) in live]


def _solo_job_status(o: Outcome) -> JobStatus:
    if o.status is TaskStatus.SUCCEEDED or o.status is TaskStatus.SKIPPED:
        return JobStatus.SUCCEEDED
    return JobStatus.FAILED


class HeartbeatOp(WriteOp[int]):
    """Extend the leases of the tasks this worker is running."""

    batchable = False

    def __init__(self, *, worker: str, task_ids: list[int], lease_seconds: float) -> None:
        self.worker = worker
        self.task_ids = task_ids
        self.lease_seconds = lease_seconds

    async def apply(self, conn: AsyncConnection) -> int:
        result = await conn.execute(
            update(tasks)
            .where(
                tasks.c.id.in_(self.task_ids),
                tasks.c.lease_owner == self.worker,
                tasks.c.status == TaskStatus.RUNNING.value,
            )
            .values(lease_expires_at=time.time() + self.lease_seconds)
        )
        return int(result.rowcount or 0)


class HandBackOp(WriteOp[int]):
    """At shutdown: put unfinished tasks back to ``queued`` without spending an attempt."""

    batchable = False

    def __init__(self, running: list[tuple[int, int]]) -> None:
        self.running = running

    async def apply(self, conn: AsyncConnection) -> int:
        now = time.time()
        params = [
            {"b_id": tid, "b_attempt": attempt, "b_now": now} for tid, attempt in self.running
        ]
        result = await conn.execute(
            update(tasks)
            .where(
                tasks.c.id == bindparam("b_id"),
                tasks.c.attempt == bindparam("b_attempt"),
                tasks.c.status == TaskStatus.RUNNING.value,
            )
            .values(
                status=TaskStatus.QUEUED.value,
                next_attempt_at=bindparam("b_now"),
                lease_owner=None,
                lease_expires_at=None,
            ),
            params,
        )
        await conn.execute(
            update(attempts)
            .where(
                attempts.c.task_id == bindparam("b_id"),
                attempts.c.attempt == bindparam("b_attempt"),
                attempts.c.status == AttemptStatus.RUNNING.value,
            )
            .values(status=AttemptStatus.INTERRUPTED.value, finished_at=bindparam("b_now")),
            params,
        )
        self.wakes = True
        return int(result.rowcount or 0)
