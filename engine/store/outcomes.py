"""The writes that end attempts: record an outcome, renew leases, hand tasks back.

Outcomes batch (``apply_many``) so that N results cost a handful of statements and one commit.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.dag import job_outcome
from engine.states import AttemptStatus, TaskStatus
from engine.store import events
from engine.store.attempts import attempt_fence, fence, fence_many
from engine.store.claims import Dispatch, claim_tasks
from engine.store.instances import account
from engine.store.progress import finish_jobs, settle
from engine.store.records import Outcome
from engine.store.tables import attempts, tasks
from engine.store.writer import WriteOp

_record_task = (
    update(tasks)
    .where(fence(bindparam("b_id"), bindparam("b_attempt")))
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

_record_task_returning = _record_task.returning(tasks.c.id, tasks.c.name)

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


#: an outcome with one of these statuses leaves the task active: its job cannot advance
_STILL_ACTIVE = frozenset({TaskStatus.QUEUED, TaskStatus.WAITING})


def _outcome_params(o: Outcome) -> dict[str, Any]:
    final = o.status not in _STILL_ACTIVE
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
    that worker in the same transaction; they are left in ``dispatch.claimed``.
    """

    def __init__(self, outcome: Outcome, dispatch: Dispatch | None = None) -> None:
        self.outcome = outcome
        self.dispatch = dispatch

    async def apply(self, conn: AsyncConnection) -> bool:
        (result,) = await self.apply_many(conn, [self])
        return result

    @classmethod
    async def apply_many(cls, conn: AsyncConnection, ops: Sequence[Any]) -> list[Any]:
        outcomes: list[Outcome] = [op.outcome for op in ops]
        for op in ops:
            if op.dispatch is not None:
                op.dispatch.claimed.clear()  # a batch that failed is applied again op by op
        if len(outcomes) == 1:
            # One outcome (the idle path): the fenced UPDATE itself says whether it applied.
            o = outcomes[0]
            params = [_outcome_params(o)]
            applied = (await conn.execute(_record_task_returning, params[0])).first()
            names = {(applied.id, o.attempt): applied.name} if applied is not None else {}
            valid = outcomes if applied is not None else []
        else:
            names = await _live_outcomes(conn, outcomes)
            valid = [o for o in outcomes if (o.task_id, o.attempt) in names]
            params = [_outcome_params(o) for o in valid]
            if params:
                await conn.execute(_record_task, params)
        if valid:
            await conn.execute(_record_attempt, params)
            for o in valid:
                _record_event(conn, o, names[(o.task_id, o.attempt)])
            now = time.time()
            solo = {o.job_id: o for o in valid if o.solo and o.status not in _STILL_ACTIVE}
            if solo:
                ended = {j: job_outcome([o.status]) for j, o in solo.items()}
                done = {j: s for j, s in ended.items() if s is not None}
                ops[0].wakes = await finish_jobs(conn, done, now)
            ended_tasks: dict[str, dict[int, tuple[TaskStatus, str | None]]] = {}
            for o in valid:
                if not o.solo and o.parent_id is None and o.status not in _STILL_ACTIVE:
                    ended_tasks.setdefault(o.job_id, {})[o.task_id] = (o.status, o.skip_reason)
            # for_each instances settle their job only when their parent ends
            parents_ended, promoted = await account(conn, valid, now)
            ops[0].wakes = ops[0].wakes or promoted
            # a job whose for_each task just ended is settled whole: that task is not among
            # the ended tasks the linear path starts from
            linear = {j: e for j, e in ended_tasks.items() if j not in parents_ended}
            queued = await settle(conn, linear, now, linear)
            queued = await settle(conn, parents_ended, now) or queued
            # an ended instance leaves room for the next ones of its job: claimed here too
            mapped = {
                o.job_id
                for o in valid
                if o.parent_id is not None and o.status is not TaskStatus.QUEUED
            }
            if queued or mapped:
                multi = set(ended_tasks) | parents_ended | mapped
                unclaimed = not await _claim_promoted(conn, ops, multi)
                ops[0].wakes = ops[0].wakes or unclaimed
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
        by_job.get(task.job_id, asking[0]).dispatch.claimed.append(task)
    return len(claimed) < sum(op.dispatch.limit for op in asking)


def _record_event(conn: AsyncConnection, o: Outcome, task: str) -> None:
    events.task_changed(
        conn,
        o.job_id,
        task,
        o.status.value,
        o.attempt,
        o.finished_at,
        error=o.error,
        next_attempt_at=o.next_attempt_at if o.status is TaskStatus.QUEUED else None,
    )


async def _live_outcomes(
    conn: AsyncConnection, outcomes: list[Outcome]
) -> dict[tuple[int, int], str]:
    """The outcomes that pass the :func:`fence` (checked for a whole batch in one query):
    (task id, attempt) -> task name."""
    rows = (
        await conn.execute(
            select(tasks.c.id, tasks.c.attempt, tasks.c.name)
            .where(fence_many([(o.task_id, o.attempt) for o in outcomes]))
            .with_for_update()
        )
    ).all()
    return {(r.id, r.attempt): r.name for r in rows}


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
        if not self.running:
            return 0
        now = time.time()
        params = [
            {"b_id": tid, "b_attempt": attempt, "b_now": now} for tid, attempt in self.running
        ]
        handed = (
            await conn.execute(
                select(tasks.c.id, tasks.c.attempt, tasks.c.job_id, tasks.c.name).where(
                    fence_many(self.running)
                )
            )
        ).all()
        result = await conn.execute(
            update(tasks)
            .where(fence(bindparam("b_id"), bindparam("b_attempt")))
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
            .where(attempt_fence(bindparam("b_id"), bindparam("b_attempt")))
            .values(status=AttemptStatus.INTERRUPTED.value, finished_at=bindparam("b_now")),
            params,
        )
        queued = TaskStatus.QUEUED.value
        for r in handed:
            events.task_changed(conn, r.job_id, r.name, queued, r.attempt, now, next_attempt_at=now)
        self.wakes = True
        return int(result.rowcount or 0)
