"""Callback tokens: registered before a callback task's request is sent, used once by
``POST /callbacks/{token}``, closed by the reaper when their time is up.

Only the token's sha256 is stored: the database never holds a usable token. A token is live
while it is open (``closed_at`` null) and its task runs or waits with the token's attempt.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.dag import job_outcome, policy_from_fields
from engine.errors import Conflict, NotFound
from engine.states import AttemptStatus, JobStatus, TaskStatus
from engine.store import events
from engine.store.progress import finish_jobs, settle
from engine.store.records import Outcome, StoredTaskSpec, Transition
from engine.store.tables import attempts, callbacks, jobs, tasks
from engine.store.writer import WriteOp

#: a callback may arrive while the worker is still recording the call's answer
_OPEN_TASK = [TaskStatus.RUNNING.value, TaskStatus.WAITING.value]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class CallbackTarget:
    """The task a token belongs to, as the callback endpoint needs it."""

    task_id: int
    job_id: str
    task: str
    attempt: int
    spec: StoredTaskSpec

    @classmethod
    def from_row(cls, row: Any) -> CallbackTarget:
        return cls(
            task_id=row.task_id,
            job_id=row.job_id,
            task=row.name,
            attempt=row.attempt,
            spec=StoredTaskSpec.from_json(row.spec),
        )


class RegisterCallbackOp(WriteOp[None]):
    def __init__(self, *, digest: str, task_id: int, job_id: str, attempt: int, timeout: float):
        self.row = {
            "token_hash": digest,
            "task_id": task_id,
            "job_id": job_id,
            "attempt": attempt,
            "created_at": time.time(),
            "due_at": time.time() + timeout,
            "closed_at": None,
        }

    async def apply(self, conn: AsyncConnection) -> None:
        await conn.execute(insert(callbacks), [self.row])

    @classmethod
    async def apply_many(cls, conn: AsyncConnection, ops: Any) -> list[Any]:
        await conn.execute(insert(callbacks), [op.row for op in ops])
        return [None] * len(ops)


async def callback_target(conn: AsyncConnection, digest: str) -> CallbackTarget:
    """The live token's task; ``NotFound`` for an unknown token, ``Conflict`` for a used one,
    a canceled job's, or one whose attempt ended (timed out, retried)."""
    row = (
        await conn.execute(
            select(
                callbacks.c.task_id,
                callbacks.c.job_id,
                callbacks.c.attempt.label("token_attempt"),
                callbacks.c.closed_at,
                tasks.c.name,
                tasks.c.attempt,
                tasks.c.status,
                tasks.c.spec,
                jobs.c.status.label("job_status"),
            )
            .select_from(
                callbacks.join(tasks, tasks.c.id == callbacks.c.task_id).join(
                    jobs, jobs.c.id == callbacks.c.job_id
                )
            )
            .where(callbacks.c.token_hash == digest)
        )
    ).first()
    if row is None:
        raise NotFound("unknown callback token")
    _check_live(row)
    return CallbackTarget.from_row(row)


def _check_live(row: Any) -> None:
    if row.job_status == JobStatus.CANCELED.value:
        raise Conflict("the job of this callback was canceled")
    if row.closed_at is not None:
        raise Conflict("this callback token was already used or has timed out")
    if row.status not in _OPEN_TASK or row.attempt != row.token_attempt:
        raise Conflict(f"the task no longer waits for this callback (it is {row.status})")


class CompleteCallbackOp(WriteOp[None]):
    """Use a token once: record its outcome on the task, fenced on the token's attempt, and
    settle the job in the same transaction (downstream tasks queued or skipped)."""

    batchable = False

    def __init__(self, digest: str, outcome: Outcome) -> None:
        self.digest = digest
        self.outcome = outcome

    async def apply(self, conn: AsyncConnection) -> None:
        o = self.outcome
        now = o.finished_at
        closed = await conn.execute(
            update(callbacks)
            .where(callbacks.c.token_hash == self.digest, callbacks.c.closed_at.is_(None))
            .values(closed_at=now)
        )
        if not closed.rowcount:
            raise Conflict("this callback token was already used or has timed out")
        ended = await conn.execute(
            update(tasks)
            .where(
                tasks.c.id == o.task_id,
                tasks.c.attempt == o.attempt,
                tasks.c.status.in_(_OPEN_TASK),
            )
            .values(
                status=o.status.value,
                response_body=o.response_body,
                response_truncated=False,
                error=o.error,
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(tasks.c.name)
        )
        task = ended.first()
        if task is None:
            raise Conflict("the task no longer waits for this callback")
        events.task_changed(
            conn, o.job_id, task.name, o.status.value, o.attempt, now, error=o.error
        )
        await conn.execute(
            update(attempts)
            .where(
                attempts.c.task_id == o.task_id,
                attempts.c.attempt == o.attempt,
                attempts.c.status.in_([AttemptStatus.RUNNING.value, AttemptStatus.WAITING.value]),
            )
            .values(status=o.attempt_status.value, finished_at=now, error=o.error)
        )
        if o.solo:
            final = job_outcome([o.status])
            if final is not None:
                await finish_jobs(conn, {o.job_id: final}, now)
        elif await settle(conn, [o.job_id], now, {o.job_id: {o.task_id: (o.status, None)}}):
            self.wakes = True


async def time_out_callbacks(conn: AsyncConnection, now: float) -> list[Transition]:
    """Waiting tasks whose token is past due: retried with a new request (and token) while
    attempts remain, else failed with ``callback_timeout``. Tokens of tasks that ended some
    other way are closed; a token whose call is still running is left for the next sweep."""
    rows = (
        await conn.execute(
            select(
                callbacks.c.token_hash,
                callbacks.c.attempt.label("token_attempt"),
                tasks.c.id,
                tasks.c.job_id,
                tasks.c.name,
                tasks.c.attempt,
                tasks.c.status,
                tasks.c.tries,
                tasks.c.max_attempts,
                tasks.c.spec,
            )
            .select_from(callbacks.outerjoin(tasks, tasks.c.id == callbacks.c.task_id))
            .where(callbacks.c.closed_at.is_(None), callbacks.c.due_at < now)
            .limit(1000)
            .with_for_update(skip_locked=True, of=callbacks)
        )
    ).all()
    changed: list[Transition] = []
    for row in rows:
        current = row.id is not None and row.attempt == row.token_attempt
        if current and row.status == TaskStatus.RUNNING.value:
            continue
        await conn.execute(
            update(callbacks).where(callbacks.c.token_hash == row.token_hash).values(closed_at=now)
        )
        if current and row.status == TaskStatus.WAITING.value:
            changed.append(await _time_out(conn, row, now))
    return changed


async def end_waiting_attempt(
    conn: AsyncConnection,
    task_id: int,
    attempt: int,
    status: AttemptStatus,
    now: float,
    error: dict[str, Any] | None,
) -> None:
    """End an attempt that waits for its callback (timed out, expired)."""
    await conn.execute(
        update(attempts)
        .where(
            attempts.c.task_id == task_id,
            attempts.c.attempt == attempt,
            attempts.c.status == AttemptStatus.WAITING.value,
        )
        .values(status=status.value, finished_at=now, error=error)
    )


def callback_timeout_error(timeout: float | None) -> dict[str, Any]:
    return {
        "type": "callback_timeout",
        "message": f"no callback arrived within callback.timeout_sec ({timeout:g} s)",
    }


async def _time_out(conn: AsyncConnection, row: Any, now: float) -> Transition:
    spec = StoredTaskSpec.from_json(row.spec)
    policy = policy_from_fields(
        max_attempts=row.max_attempts,
        strategy=spec.backoff_strategy,
        backoff_seconds=spec.backoff_seconds,
        max_backoff_seconds=spec.max_backoff_seconds,
        retry_on_status=spec.retry_on_status,
    )
    error = callback_timeout_error(spec.callback_timeout_sec or 0.0)
    retry = row.tries < policy.max_attempts
    values: dict[str, Any] = {"error": error}
    due: float | None = None
    if retry:
        new = TaskStatus.QUEUED
        # due from the real clock, as lost leases are (``now`` may be a test's future)
        due = time.time() + policy.delay(row.tries)
        values |= {"status": new.value, "next_attempt_at": due}
    else:
        new = TaskStatus.FAILED
        values |= {"status": new.value, "finished_at": now}
    await conn.execute(
        update(tasks)
        .where(
            tasks.c.id == row.id,
            tasks.c.attempt == row.attempt,
            tasks.c.status == TaskStatus.WAITING.value,
        )
        .values(**values)
    )
    await end_waiting_attempt(conn, row.id, row.attempt, AttemptStatus.CALLBACK_TIMEOUT, now, error)
    events.task_changed(
        conn, row.job_id, row.name, new.value, row.attempt, now, error=error, next_attempt_at=due
    )
    return Transition(
        job_id=row.job_id,
        task=row.name,
        attempt=row.attempt,
        old=TaskStatus.WAITING,
        new=new,
        error_type="callback_timeout",
    )


async def waiting_count(conn: AsyncConnection) -> int:
    query = select(func.count()).where(tasks.c.status == TaskStatus.WAITING.value)
    return int((await conn.execute(query)).scalar_one())
