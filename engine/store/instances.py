"""``for_each`` instances: expand a parent task into instance rows, and account for their ends.

An instance is an ordinary task row (claimed, leased, retried and fenced like any task) with a
``parent_id`` and an ``item_index``, left out of the job's DAG. The parent stays ``running``
without a lease while they run, and keeps the counters (``items_total``, ``items_succeeded``,
``items_failed``): an instance's outcome updates its parent's row in the transaction that
records it, and only the outcome that completes the count (or the first failure) reads more.

Expansion is written in chunks, each its own transaction through the writer, so a 10,000-item
list never holds the write lock for one long insert; the parent's lease is kept (heartbeat)
until the last chunk, so a worker that dies mid-way leaves a parent the reaper queues again,
and the next expansion starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.states import AttemptStatus, TaskStatus
from engine.store import events
from engine.store.attempts import attempt_fence, fence
from engine.store.records import ClaimedTask, Outcome
from engine.store.tables import attempts, tasks
from engine.store.writer import WriteOp

#: instance rows inserted per transaction
CHUNK = 500


def instance_name(parent: str, index: int) -> str:
    return f"{parent}[{index}]"


class ExpandOp(WriteOp[bool]):
    """Insert one chunk of a parent's instances, fenced on the parent's attempt.

    ``start == 0`` first removes the instances of an earlier expansion and sets the counters;
    the last chunk releases the parent's lease and ends its attempt (an empty list ends the
    parent at once: ``succeeded`` with output ``[]``). False when the fence refused it.
    """

    batchable = False

    def __init__(
        self,
        parent: ClaimedTask,
        items: Sequence[Any],
        start: int,
        total: int,
        *,
        seal: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.parent = parent
        self.items = items
        self.start = start
        self.total = total
        #: encrypts an instance's request parts at rest (with a secret key configured)
        self.seal = seal

    async def apply(self, conn: AsyncConnection) -> bool:
        parent = self.parent
        row = (
            await conn.execute(
                select(tasks.c.priority, tasks.c.trigger_rule).where(
                    fence(parent.id, parent.attempt)
                )
            )
        ).first()
        if row is None:
            return False
        now = time.time()
        if self.start == 0:
            await conn.execute(delete(tasks).where(tasks.c.parent_id == parent.id))
            await conn.execute(
                update(tasks)
                .where(tasks.c.id == parent.id)
                .values(items_total=self.total, items_succeeded=0, items_failed=0)
            )
        window = parent.spec.max_parallel or self.total
        rows = [
            _instance_row(parent, row, self.start + i, item, now, queued=self.start + i < window)
            for i, item in enumerate(self.items)
        ]
        if rows and self.seal is not None:
            for r in rows:
                r["spec"] = self.seal(r["spec"])
        if rows:
            await conn.execute(insert(tasks), rows)
            self.wakes = self.start < window
        if self.start + len(rows) >= self.total:
            await self._finish_expansion(conn, now)
        return True

    async def _finish_expansion(self, conn: AsyncConnection, now: float) -> None:
        parent = self.parent
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
        if self.total == 0:
            values |= {
                "status": TaskStatus.SUCCEEDED.value,
                "response_body": [],
                "finished_at": now,
                "tries": tasks.c.tries + 1,
            }
        await conn.execute(update(tasks).where(fence(parent.id, parent.attempt)).values(values))
        await conn.execute(
            update(attempts)
            .where(attempt_fence(parent.id, parent.attempt))
            .values(status=AttemptStatus.SUCCEEDED.value, finished_at=now)
        )
        if self.total == 0:
            done = TaskStatus.SUCCEEDED.value
            events.task_changed(conn, parent.job_id, parent.name, done, parent.attempt, now)
            from engine.store.progress import settle

            self.wakes = await settle(conn, [parent.job_id], now) or self.wakes


def _instance_row(
    parent: ClaimedTask, row: Any, index: int, item: Any, now: float, *, queued: bool
) -> dict[str, Any]:
    spec = replace(
        parent.spec,
        solo=False,  # an instance's outcome never ends the job by itself
        for_each=None,
        max_parallel=None,
        parent_id=parent.id,
        item_index=index,
    )
    return {
        "job_id": parent.job_id,
        "name": instance_name(parent.name, index),
        "position": parent.spec.position,
        "status": (TaskStatus.QUEUED if queued else TaskStatus.PENDING).value,
        "priority": row.priority,
        "spec": {**spec.to_json(), "item": item},
        "upstream": list(parent.upstream),
        "trigger_rule": row.trigger_rule,
        "templated": True,
        "attempt": 0,
        "tries": 0,
        "max_attempts": parent.max_attempts,
        "rescues": 0,
        "next_attempt_at": now if queued else None,
        "ready_at": now if queued else None,
        "parent_id": parent.id,
        "item_index": index,
    }


async def account(
    conn: AsyncConnection, ended: Iterable[Outcome], now: float
) -> tuple[set[str], bool]:
    """Count ended instances on their parents; end the parents whose count is complete (or
    that had an instance fail) and promote waiting instances into freed ``max_parallel`` room.

    Returns the jobs whose DAG must be settled (a parent ended), and whether instances were
    queued.
    """
    counts: dict[int, list[Any]] = {}
    for o in ended:
        if o.parent_id is None or o.status is TaskStatus.QUEUED:
            continue
        entry = counts.setdefault(o.parent_id, [0, 0, None])
        if o.status is TaskStatus.FAILED:
            entry[1] += 1
            entry[2] = entry[2] or o
        elif o.status in (TaskStatus.SUCCEEDED, TaskStatus.SKIPPED):
            entry[0] += 1
    settle_jobs: set[str] = set()
    promoted = False
    for parent_id, (ok, bad, first_failure) in sorted(counts.items()):
        row = (
            await conn.execute(
                update(tasks)
                .where(tasks.c.id == parent_id, tasks.c.status == TaskStatus.RUNNING.value)
                .values(
                    items_succeeded=tasks.c.items_succeeded + ok,
                    items_failed=tasks.c.items_failed + bad,
                )
                .returning(
                    tasks.c.job_id,
                    tasks.c.items_total,
                    tasks.c.items_succeeded,
                    tasks.c.items_failed,
                    tasks.c.spec,
                )
            )
        ).first()
        if row is None:
            continue  # the parent ended already (failed fast, canceled)
        if bad:
            await _fail_parent(conn, parent_id, first_failure, now)
            settle_jobs.add(row.job_id)
        elif row.items_succeeded >= row.items_total:
            await _succeed_parent(conn, parent_id, now)
            settle_jobs.add(row.job_id)
        elif row.spec.get("max_parallel"):
            promoted = await _promote(conn, parent_id, ok, now) or promoted
    return settle_jobs, promoted


async def _promote(conn: AsyncConnection, parent_id: int, room: int, now: float) -> bool:
    waiting = (
        select(tasks.c.id)
        .where(tasks.c.parent_id == parent_id, tasks.c.status == TaskStatus.PENDING.value)
        .order_by(tasks.c.item_index)
        .limit(room)
    )
    ids = [r.id for r in await conn.execute(waiting)]
    if ids:
        await conn.execute(
            update(tasks)
            .where(tasks.c.id.in_(ids), tasks.c.status == TaskStatus.PENDING.value)
            .values(status=TaskStatus.QUEUED.value, ready_at=now, next_attempt_at=now)
        )
    return bool(ids)


async def _succeed_parent(conn: AsyncConnection, parent_id: int, now: float) -> None:
    outputs = [
        r.response_body
        for r in await conn.execute(
            select(tasks.c.response_body)
            .where(tasks.c.parent_id == parent_id)
            .order_by(tasks.c.item_index)
        )
    ]
    ended = await conn.execute(
        update(tasks)
        .where(tasks.c.id == parent_id, tasks.c.status == TaskStatus.RUNNING.value)
        .values(
            status=TaskStatus.SUCCEEDED.value,
            response_body=outputs,
            finished_at=now,
            tries=tasks.c.tries + 1,
        )
        .returning(tasks.c.job_id, tasks.c.name, tasks.c.attempt)
    )
    for row in ended:
        done = TaskStatus.SUCCEEDED.value
        events.task_changed(conn, row.job_id, row.name, done, row.attempt, now)


async def _fail_parent(
    conn: AsyncConnection, parent_id: int, failure: Outcome | None, now: float
) -> None:
    """Fail fast: the instances not started yet are canceled; running ones finish on their own."""
    await conn.execute(
        update(tasks)
        .where(
            tasks.c.parent_id == parent_id,
            tasks.c.status.in_([TaskStatus.PENDING.value, TaskStatus.QUEUED.value]),
        )
        .values(
            status=TaskStatus.CANCELED.value,
            finished_at=now,
            error={"type": "canceled", "message": "another instance failed"},
        )
    )
    index = None
    if failure is not None:
        index = (
            await conn.execute(select(tasks.c.item_index).where(tasks.c.id == failure.task_id))
        ).scalar_one_or_none()
    error = {
        "type": "instance_failed",
        "message": f"instance {index} failed after its retries; the instances not "
        "started were canceled",
        "item_index": index,
        "error": failure.error if failure is not None else None,
    }
    ended = await conn.execute(
        update(tasks)
        .where(tasks.c.id == parent_id, tasks.c.status == TaskStatus.RUNNING.value)
        .values(
            status=TaskStatus.FAILED.value,
            finished_at=now,
            tries=tasks.c.tries + 1,
            error=error,
        )
        .returning(tasks.c.job_id, tasks.c.name, tasks.c.attempt)
    )
    for row in ended:
        failed = TaskStatus.FAILED.value
        events.task_changed(conn, row.job_id, row.name, failed, row.attempt, now, error=error)
