"""Submission: insert accepted jobs (batched), honour Idempotency-Key, dispatch directly."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.errors import IdempotencyMismatch
from engine.states import JobStatus, TaskStatus
from engine.store.attempts import begin_attempts
from engine.store.audit import insert_entries
from engine.store.claims import Dispatch
from engine.store.records import ClaimedTask, StoredTaskSpec
from engine.store.tables import job_interfaces, job_tags, jobs, tasks
from engine.store.writer import WriteOp

IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600


@dataclass(kw_only=True)
class NewJob:
    """Rows of one accepted job, ready to insert."""

    job: dict[str, Any]
    tasks: list[dict[str, Any]]
    tags: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    #: the audit row of this job's creation (written in the same transaction), if any
    audit: dict[str, Any] | None = None

    def due_count(self, now: float) -> int:
        """How many of its tasks a worker could take right now."""
        return sum(1 for t in self.tasks if is_due(t, now))


@dataclass(frozen=True, kw_only=True)
class Submitted:
    job_id: str
    status: str
    existing: bool = False


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
        #: (owner, Idempotency-Key) -> the first submission of this batch that used it
        seen: dict[tuple[str, str], tuple[Submitted, str | None]] = {}
        for op in ops:
            job = op.new.job
            key = (job["owner"], job.get("idempotency_key") or "")
            if key[1] and key in seen:
                first, digest = seen[key]
                if digest != job.get("request_hash"):
                    # Raising fails the batch; applied op by op, the other op commits first and
                    # this one then meets its committed job: the same answer as across batches.
                    raise IdempotencyMismatch(
                        f"Idempotency-Key {key[1]!r} was used for job {first.job_id} "
                        "with a different body"
                    )
                results.append(Submitted(job_id=first.job_id, status=first.status, existing=True))
                continue
            existing = await op._existing(conn)
            if existing is None:
                fresh.append(op)
                existing = Submitted(job_id=job["id"], status=job["status"])
            if key[1]:
                seen[key] = (existing, job.get("request_hash"))
            results.append(existing)
        if fresh:
            dispatched = _preclaim([op for op in fresh if op.dispatch is not None])
            ids = await insert_jobs(conn, [op.new for op in fresh], {id(r) for _, r in dispatched})
            await _record_dispatch(conn, [(op, row, ids[id(row)]) for op, row in dispatched])
            for op in fresh:
                op.wakes = _ready_count(op.new) > 0
        return results

    async def apply(self, conn: AsyncConnection) -> Submitted:
        (result,) = await self.apply_many(conn, [self])
        return result


def _ready_count(new: NewJob) -> int:
    return sum(1 for t in new.tasks if t["status"] == TaskStatus.QUEUED.value)


def is_due(row: dict[str, Any], now: float) -> bool:
    """A task row a worker could take right now (ready, and not scheduled later)."""
    return row["status"] == TaskStatus.QUEUED.value and row["next_attempt_at"] <= now


def _preclaim(ops: list[SubmitOp]) -> list[tuple[SubmitOp, dict[str, Any]]]:
    """Direct dispatch: the job is inserted already claimed for the waiting worker.

    Up to the op's ``limit`` of its due root tasks are written as running (attempt 1, lease held),
    and the job as running; no claim statement is needed. Returns (op, task row) pairs.
    """
    now = time.time()
    out: list[tuple[SubmitOp, dict[str, Any]]] = []
    for op in ops:
        dispatch = op.dispatch
        assert dispatch is not None
        dispatch.claimed.clear()  # a batch that failed is applied again op by op
        if op.preclaimed is not None:
            out += [(op, row) for row in op.preclaimed]
            continue
        op.preclaimed = []
        budget = dispatch.limit
        for row in op.new.tasks:
            if budget and is_due(row, now):
                row.update(
                    status=TaskStatus.RUNNING.value,
                    attempt=1,
                    lease_owner=dispatch.worker,
                    lease_expires_at=now + dispatch.lease_seconds,
                    started_at=now,
                )
                budget -= 1
                op.preclaimed.append(row)
                out.append((op, row))
        if budget < dispatch.limit:
            op.new.job.update(status=JobStatus.RUNNING.value, started_at=now)
    return out


async def _record_dispatch(
    conn: AsyncConnection, dispatched: list[tuple[SubmitOp, dict[str, Any], int]]
) -> None:
    """The claim bookkeeping of the dispatched tasks, which go to their op's ``dispatch``.

    Their jobs were inserted as running already (:func:`_preclaim`)."""
    by_worker: dict[str, list[ClaimedTask]] = {}
    for op, row, task_id in dispatched:
        assert op.dispatch is not None
        task = ClaimedTask(
            id=task_id,
            job_id=row["job_id"],
            name=row["name"],
            attempt=1,
            tries=row["tries"],
            max_attempts=row["max_attempts"],
            spec=StoredTaskSpec.from_json(row["spec"]),
            upstream=tuple(row["upstream"]),
            templated=row["templated"],
            expires_at=row["expires_at"],
        )
        op.dispatch.claimed.append(task)
        by_worker.setdefault(op.dispatch.worker, []).append(task)
    for worker, claimed in by_worker.items():
        await begin_attempts(conn, worker, claimed, mark_jobs_running=False)


_insert_tasks = insert(tasks).returning(tasks.c.id, sort_by_parameter_order=True)


async def insert_jobs(conn: AsyncConnection, new: list[NewJob], wanted: set[int]) -> dict[int, int]:
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
    await insert_entries(conn, [n.audit for n in new if n.audit is not None])
    return ids
