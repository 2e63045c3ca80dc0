"""Deferral: a claimed task whose host is paused or at its cap goes back to the queue as if it
had never been claimed (its attempt number and attempt row undone), due when the host frees."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.states import TaskStatus
from engine.store import events
from engine.store.attempts import attempt_fence, fence
from engine.store.records import Outcome
from engine.store.tables import attempts, tasks
from engine.store.writer import WriteOp


class DeferOp(WriteOp[bool]):
    """Undo one claim (fenced on its attempt): ``queued`` again, due at ``next_attempt_at``.

    The attempt number goes back down, so the next real attempt carries the number this one
    had; a worker still holding an older attempt stays fenced out (the row is not ``running``
    until it is claimed again, and then with a higher number than that worker's)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    async def apply(self, conn: AsyncConnection) -> bool:
        o = self.outcome
        result = await conn.execute(
            update(tasks)
            .where(fence(o.task_id, o.attempt))
            .values(
                status=TaskStatus.QUEUED.value,
                attempt=tasks.c.attempt - 1,
                next_attempt_at=o.next_attempt_at,
                lease_owner=None,
                lease_expires_at=None,
                error=o.error,
            )
            .returning(tasks.c.name)
        )
        name = result.scalar_one_or_none()
        if name is None:
            return False
        events.task_changed(
            conn,
            o.job_id,
            name,
            TaskStatus.QUEUED.value,
            o.attempt - 1,
            o.finished_at,
            error=o.error,
            next_attempt_at=o.next_attempt_at,
        )
        await conn.execute(delete(attempts).where(attempt_fence(o.task_id, o.attempt)))
        return True
