"""Writes off the hot path: cancel, retry a job, and the reaper's sweeps (lost leases, expired
tasks, jobs past their TTL)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.errors import Conflict, NotFound
from engine.states import (
    JOB_TERMINAL,
    TASK_RETRYABLE,
    AttemptStatus,
    JobStatus,
    TaskStatus,
)
from engine.store import events
from engine.store.attempts import end_attempt, fence
from engine.store.callbacks import end_waiting_attempt, time_out_callbacks
from engine.store.children import active_children, end_waiting_tasks
from engine.store.instances import account
from engine.store.progress import settle
from engine.store.records import Outcome, Transition
from engine.store.tables import (
    attempts,
    callbacks,
    job_events,
    job_interfaces,
    job_tags,
    jobs,
    tasks,
    webhook_attempts,
    webhook_deliveries,
)
from engine.store.webhooks import enqueue_webhooks
from engine.store.writer import WriteOp

_ACTIVE_TASK = [
    TaskStatus.PENDING.value,
    TaskStatus.QUEUED.value,
    TaskStatus.RUNNING.value,
    TaskStatus.WAITING.value,
]


async def _job_status(conn: AsyncConnection, job_id: str, owner: str | None) -> str:
    query = select(jobs.c.status).where(jobs.c.id == job_id)
    if owner is not None:
        query = query.where(jobs.c.owner == owner)
    status = (await conn.execute(query)).scalar_one_or_none()
    if status is None:
        raise NotFound(f"job {job_id} not found")
    return str(status)


_EXPIRABLE = [TaskStatus.QUEUED.value, TaskStatus.RUNNING.value, TaskStatus.WAITING.value]


@dataclass(frozen=True, kw_only=True)
class Canceled:
    status: str
    #: (task id, attempt) of calls that were running and must be interrupted
    interrupted: list[tuple[int, int]]


class CancelOp(WriteOp[Canceled]):
    batchable = False

    def __init__(self, job_id: str, owner: str | None = None) -> None:
        self.job_id = job_id
        self.owner = owner

    async def apply(self, conn: AsyncConnection) -> Canceled:
        status = await _job_status(conn, self.job_id, self.owner)
        if JobStatus(status) in JOB_TERMINAL:
            raise Conflict(f"job {self.job_id} already ended: {status}")
        now = time.time()
        interrupted = await _cancel_job(conn, self.job_id, now)
        # a child job canceled on its own fails the sub-workflow task that waits for it
        parents = await end_waiting_tasks(conn, {self.job_id: JobStatus.CANCELED}, now)
        if parents:
            self.wakes = await settle(conn, parents, now)
        return Canceled(status=JobStatus.CANCELED.value, interrupted=interrupted)


async def _cancel_job(conn: AsyncConnection, job_id: str, now: float) -> list[tuple[int, int]]:
    """Cancel a job, its unfinished tasks and, first, its running child jobs; returns the
    (task id, attempt) of the calls that were running."""
    interrupted: list[tuple[int, int]] = []
    for child in await active_children(conn, job_id):
        interrupted += await _cancel_job(conn, child, now)
    active = (
        await conn.execute(
            select(tasks.c.id, tasks.c.name, tasks.c.attempt, tasks.c.status, tasks.c.parent_id)
            .where(tasks.c.job_id == job_id, tasks.c.status.in_(_ACTIVE_TASK))
            .order_by(tasks.c.position)
        )
    ).all()
    running = [r for r in active if r.status == TaskStatus.RUNNING.value]
    error = {"type": "canceled", "message": "the job was canceled"}
    await conn.execute(
        update(tasks)
        .where(tasks.c.job_id == job_id, tasks.c.status.in_(_ACTIVE_TASK))
        .values(
            status=TaskStatus.CANCELED.value,
            finished_at=now,
            lease_owner=None,
            lease_expires_at=None,
            error=error,
        )
    )
    canceled = TaskStatus.CANCELED.value
    for r in active:
        if r.parent_id is None:  # a for_each task's instances are told through their parent
            events.task_changed(conn, job_id, r.name, canceled, r.attempt, now, error=error)
    await conn.execute(
        update(attempts)
        .where(
            attempts.c.job_id == job_id,
            attempts.c.status.in_([AttemptStatus.RUNNING.value, AttemptStatus.WAITING.value]),
        )
        .values(status=AttemptStatus.CANCELED.value, finished_at=now)
    )
    ended = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id)
        .values(
            status=JobStatus.CANCELED.value,
            finished_at=now,
            expires_at=jobs.c.ttl_seconds + now,
        )
        .returning(jobs.c.id, jobs.c.on_complete)
    )
    events.job_changed(conn, job_id, JobStatus.CANCELED.value, now)
    await enqueue_webhooks(conn, ended.all(), JobStatus.CANCELED.value, now)
    return interrupted + [(r.id, r.attempt) for r in running]


class RetryJobOp(WriteOp[str]):
    """Re-run the failed, skipped and canceled tasks of an ended job; keep succeeded outputs."""

    batchable = False

    def __init__(self, job_id: str, owner: str | None = None) -> None:
        self.job_id = job_id
        self.owner = owner

    async def apply(self, conn: AsyncConnection) -> str:
        status = await _job_status(conn, self.job_id, self.owner)
        if status not in (JobStatus.FAILED.value, JobStatus.CANCELED.value):
            raise Conflict(f"job {self.job_id} is {status}; only failed or canceled jobs retry")
        retried = [s.value for s in TASK_RETRYABLE]
        # the instances of for_each tasks that run again go; the new run expands afresh
        parents = select(tasks.c.id).where(
            tasks.c.job_id == self.job_id,
            tasks.c.parent_id.is_(None),
            tasks.c.status.in_(retried),
        )
        await conn.execute(
            delete(tasks).where(tasks.c.job_id == self.job_id, tasks.c.parent_id.in_(parents))
        )
        now = time.time()
        again = (
            await conn.execute(
                select(tasks.c.name, tasks.c.attempt)
                .where(
                    tasks.c.job_id == self.job_id,
                    tasks.c.parent_id.is_(None),
                    tasks.c.status.in_(retried),
                )
                .order_by(tasks.c.position)
            )
        ).all()
        await conn.execute(
            update(tasks)
            .where(
                tasks.c.job_id == self.job_id,
                tasks.c.parent_id.is_(None),
                tasks.c.status.in_(retried),
            )
            .values(
                status=TaskStatus.PENDING.value,
                tries=0,
                rescues=0,
                error=None,
                skip_reason=None,
                response_status=None,
                response_headers=None,
                response_body=None,
                response_truncated=None,
                duration_ms=None,
                finished_at=None,
                ready_at=None,
                expires_at=None,
            )
        )
        await conn.execute(
            update(jobs)
            .where(jobs.c.id == self.job_id)
            .values(status=JobStatus.RUNNING.value, finished_at=None, expires_at=None)
        )
        events.job_changed(conn, self.job_id, JobStatus.RUNNING.value, now)
        for r in again:
            events.task_changed(conn, self.job_id, r.name, TaskStatus.PENDING.value, r.attempt, now)
        self.wakes = await settle(conn, [self.job_id], now)
        return JobStatus.RUNNING.value


@dataclass(frozen=True, kw_only=True)
class Reaped:
    requeued: int = 0
    lost: int = 0
    expired: int = 0
    deleted_jobs: int = 0
    #: (task id, attempt) of expired calls that are still running somewhere
    interrupted: tuple[tuple[int, int], ...] = ()
    #: every task status this sweep changed
    transitions: tuple[Transition, ...] = ()


class ReapOp(WriteOp[Reaped]):
    batchable = False

    def __init__(self, *, max_rescues: int, now: float | None = None) -> None:
        self.max_rescues = max_rescues
        self.now = now

    async def apply(self, conn: AsyncConnection) -> Reaped:
        now = self.now if self.now is not None else time.time()
        self._dead_instances: list[Outcome] = []
        lost = await self._lost_leases(conn, now)
        expired, interrupted = await self._expired(conn, now)
        timed_out = await time_out_callbacks(conn, now)
        changed = lost + expired + timed_out
        requeued = sum(1 for t in lost + timed_out if t.new is TaskStatus.QUEUED)
        ended = {t.job_id for t in changed if t.new is TaskStatus.FAILED}
        # a for_each instance that failed here is counted on its parent like any other
        parents_ended, promoted = await account(conn, self._dead_instances, now)
        ended = (ended - {o.job_id for o in self._dead_instances}) | parents_ended
        if await settle(conn, ended, now) or requeued or promoted:
            self.wakes = True
        deleted = await _delete_expired_jobs(conn, now)
        return Reaped(
            requeued=requeued,
            lost=sum(1 for t in lost if t.new is TaskStatus.FAILED),
            expired=len(expired),
            deleted_jobs=deleted,
            interrupted=tuple(interrupted),
            transitions=tuple(changed),
        )

    async def _lost_leases(self, conn: AsyncConnection, now: float) -> list[Transition]:
        rows = (
            await conn.execute(
                select(
                    tasks.c.id,
                    tasks.c.job_id,
                    tasks.c.name,
                    tasks.c.attempt,
                    tasks.c.rescues,
                    tasks.c.parent_id,
                )
                .where(tasks.c.status == TaskStatus.RUNNING.value, tasks.c.lease_expires_at < now)
                .with_for_update(skip_locked=True)
            )
        ).all()
        changed: list[Transition] = []
        for row in rows:
            dead = row.rescues + 1 > self.max_rescues
            await end_attempt(conn, row.id, row.attempt, AttemptStatus.LOST, now, _lost_error())
            values: dict[str, Any] = {
                "rescues": row.rescues + 1,
                "lease_owner": None,
                "lease_expires_at": None,
            }
            new = TaskStatus.FAILED if dead else TaskStatus.QUEUED
            if dead:
                values |= {"status": new.value, "finished_at": now, "error": _lost_error(dead)}
            else:
                values |= {"status": new.value, "next_attempt_at": time.time()}
            await conn.execute(update(tasks).where(fence(row.id, row.attempt)).values(**values))
            changed.append(_transition(row, TaskStatus.RUNNING, new, "lost"))
            if dead and row.parent_id is not None:
                self._dead_instances.append(
                    Outcome(
                        task_id=row.id,
                        job_id=row.job_id,
                        attempt=row.attempt,
                        solo=False,
                        status=TaskStatus.FAILED,
                        attempt_status=AttemptStatus.LOST,
                        finished_at=now,
                        error=values["error"],
                        parent_id=row.parent_id,
                    )
                )
            error = values.get("error", _lost_error())
            events.task_changed(
                conn, row.job_id, row.name, new.value, row.attempt, now, error=error
            )
        return changed

    async def _expired(
        self, conn: AsyncConnection, now: float
    ) -> tuple[list[Transition], list[tuple[int, int]]]:
        rows = (
            await conn.execute(
                select(
                    tasks.c.id, tasks.c.job_id, tasks.c.name, tasks.c.attempt, tasks.c.status
                ).where(
                    tasks.c.status.in_(
                        [
                            TaskStatus.QUEUED.value,
                            TaskStatus.RUNNING.value,
                            TaskStatus.WAITING.value,
                        ]
                    ),
                    tasks.c.expires_at < now,
                )
            )
        ).all()
        interrupted: list[tuple[int, int]] = []
        changed: list[Transition] = []
        for row in rows:
            error = expired_error()
            if row.status == TaskStatus.RUNNING.value:
                interrupted.append((row.id, row.attempt))
                await end_attempt(conn, row.id, row.attempt, AttemptStatus.EXPIRED, now, error)
            elif row.status == TaskStatus.WAITING.value:
                await end_waiting_attempt(
                    conn, row.id, row.attempt, AttemptStatus.EXPIRED, now, error
                )
            await conn.execute(
                update(tasks)
                .where(tasks.c.id == row.id, tasks.c.status == row.status)
                .values(
                    status=TaskStatus.FAILED.value,
                    finished_at=now,
                    error=error,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            changed.append(_transition(row, TaskStatus(row.status), TaskStatus.FAILED, "expired"))
            failed = TaskStatus.FAILED.value
            events.task_changed(conn, row.job_id, row.name, failed, row.attempt, now, error=error)
        return changed, interrupted


def _transition(row: Any, old: TaskStatus, new: TaskStatus, error_type: str) -> Transition:
    return Transition(
        job_id=row.job_id,
        task=row.name,
        attempt=row.attempt,
        old=old,
        new=new,
        error_type=error_type,
    )


def expired_error() -> dict[str, Any]:
    return {
        "type": "expired",
        "message": "the task did not succeed within its ttl_seconds after becoming ready",
    }


def _lost_error(final: bool = False) -> dict[str, Any]:
    if final:
        return {
            "type": "lost",
            "message": "the task's worker stopped renewing its lease too many times "
            "(JOBQUEUE_MAX_RESCUES); it is not run again",
        }
    return {"type": "lost", "message": "the worker's lease expired; the task was queued again"}


async def _delete_expired_jobs(conn: AsyncConnection, now: float) -> int:
    ids = list(
        (
            await conn.execute(select(jobs.c.id).where(jobs.c.expires_at < now).limit(10_000))
        ).scalars()
    )
    await delete_jobs(conn, ids)
    return len(ids)


async def delete_jobs(conn: AsyncConnection, ids: list[str]) -> None:
    """Delete jobs with their events, tasks, attempts (stored bodies with them), tags and
    interface links."""
    if not ids:
        return
    for table in (
        job_events,
        attempts,
        callbacks,
        webhook_attempts,
        webhook_deliveries,
        tasks,
        job_tags,
        job_interfaces,
    ):
        await conn.execute(delete(table).where(table.c.job_id.in_(ids)))
    await conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))


class DeleteJobOp(WriteOp[None]):
    """Delete an ended job now (``DELETE /jobs/{id}``); a job still queued or running is
    refused (cancel it first)."""

    batchable = False

    def __init__(self, job_id: str, owner: str | None = None) -> None:
        self.job_id = job_id
        self.owner = owner

    async def apply(self, conn: AsyncConnection) -> None:
        status = await _job_status(conn, self.job_id, self.owner)
        if JobStatus(status) not in JOB_TERMINAL:
            raise Conflict(f"job {self.job_id} is {status}; cancel it before deleting it")
        await delete_jobs(conn, [self.job_id])
