"""Schedule rows: create, update, delete, and the tick that fires once across processes.

:class:`FireOp` is where "exactly one job per tick" is kept: it inserts the tick's
``schedule_fires`` row (unique on schedule and fire time) in a savepoint, then the job, in one
transaction. A process that loses the race meets the unique constraint, its savepoint rolls
back, and it creates nothing. No leader election: every process may try every tick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from ulid import ULID

from engine.errors import Conflict, NotFound
from engine.schedules.timing import Overlap, OverlapAction, overlap_action
from engine.states import JOB_TERMINAL, JobStatus
from engine.store.maintenance import CancelOp
from engine.store.submit import NewJob, SubmitOp
from engine.store.tables import jobs, schedule_fires, schedules
from engine.store.writer import WriteOp

#: ticks older than this (before the one being fired) are forgotten
FIRE_HISTORY_SECONDS = 7 * 86400


def _match(key: str) -> Any:
    return or_(schedules.c.id == key, schedules.c.name == key)


async def schedule_row(conn: AsyncConnection, key: str, owner: str | None = None) -> Row[Any]:
    query = select(schedules).where(_match(key))
    if owner is not None:
        query = query.where(schedules.c.owner == owner)
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFound(f"schedule {key!r} not found")
    return row


async def schedule_rows(conn: AsyncConnection, owner: str | None = None) -> list[Row[Any]]:
    query = select(schedules).order_by(schedules.c.name)
    if owner is not None:
        query = query.where(schedules.c.owner == owner)
    return list((await conn.execute(query)).all())


async def fire_rows(conn: AsyncConnection, schedule_id: str, limit: int) -> list[Row[Any]]:
    query = (
        select(schedule_fires)
        .where(schedule_fires.c.schedule_id == schedule_id)
        .order_by(schedule_fires.c.fire_time.desc())
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def due_rows(conn: AsyncConnection, now: float, limit: int) -> list[Row[Any]]:
    """Enabled schedules whose next tick has come (the index on ``next_fire_at``)."""
    query = (
        select(schedules)
        .where(schedules.c.next_fire_at.is_not(None), schedules.c.next_fire_at <= now)
        .order_by(schedules.c.next_fire_at)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def next_fire(conn: AsyncConnection) -> float | None:
    """The earliest next tick of any enabled schedule (one indexed query)."""
    query = (
        select(schedules.c.next_fire_at)
        .where(schedules.c.next_fire_at.is_not(None))
        .order_by(schedules.c.next_fire_at)
        .limit(1)
    )
    return (await conn.execute(query)).scalar_one_or_none()


class CreateScheduleOp(WriteOp[Row[Any]]):
    batchable = False

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    async def apply(self, conn: AsyncConnection) -> Row[Any]:
        name = self.fields["name"]
        exists = await conn.execute(select(schedules.c.id).where(schedules.c.name == name))
        if exists.first() is not None:
            raise Conflict(f"a schedule named {name!r} already exists")
        now = time.time()
        schedule_id = f"sch_{ULID()}"
        row = {"id": schedule_id, "created_at": now, "updated_at": now, "owner": ""}
        await conn.execute(insert(schedules).values(**{**row, **self.fields}))
        return await schedule_row(conn, schedule_id)


class UpdateScheduleOp(WriteOp[Row[Any]]):
    batchable = False

    def __init__(self, key: str, fields: dict[str, Any], owner: str | None = None) -> None:
        self.key = key
        self.fields = fields
        self.owner = owner

    async def apply(self, conn: AsyncConnection) -> Row[Any]:
        current = await schedule_row(conn, self.key, self.owner)
        await conn.execute(
            update(schedules)
            .where(schedules.c.id == current.id)
            .values(**self.fields, updated_at=time.time())
        )
        return await schedule_row(conn, current.id)


class DeleteScheduleOp(WriteOp[None]):
    batchable = False

    def __init__(self, key: str, owner: str | None = None) -> None:
        self.key = key
        self.owner = owner

    async def apply(self, conn: AsyncConnection) -> None:
        current = await schedule_row(conn, self.key, self.owner)
        await conn.execute(delete(schedule_fires).where(schedule_fires.c.schedule_id == current.id))
        await conn.execute(delete(schedules).where(schedules.c.id == current.id))


class AdvanceScheduleOp(WriteOp[None]):
    batchable = False

    def __init__(self, schedule_id: str, next_fire_at: float) -> None:
        self.schedule_id = schedule_id
        self.next_fire_at = next_fire_at

    async def apply(self, conn: AsyncConnection) -> None:
        await conn.execute(_advance(self.schedule_id, self.next_fire_at))


def _advance(schedule_id: str, next_fire_at: float) -> Any:
    """Move the next tick forward only: a slower process never moves it back."""
    return (
        update(schedules)
        .where(
            schedules.c.id == schedule_id,
            schedules.c.next_fire_at.is_not(None),
            schedules.c.next_fire_at < next_fire_at,
        )
        .values(next_fire_at=next_fire_at)
    )


@dataclass(frozen=True, kw_only=True)
class Fired:
    #: ``fired``, ``skipped`` (overlap), ``failed`` (the job was refused), ``taken`` (another
    #: process handled this tick) or ``gone`` (the schedule was deleted or disabled meanwhile)
    outcome: str
    job_id: str | None = None
    #: the previous job canceled by ``cancel_previous``
    canceled: str | None = None
    #: (task id, attempt) of calls of the canceled job to interrupt
    interrupted: list[tuple[int, int]] = field(default_factory=list)


class FireOp(WriteOp[Fired]):
    """Handle one tick of one schedule: create its job, or record why not."""

    batchable = False

    def __init__(
        self,
        *,
        schedule_id: str,
        fire_time: float,
        next_fire_at: float,
        new: NewJob | None,
        overlap: str,
        detail: str | None = None,
    ) -> None:
        self.schedule_id = schedule_id
        self.fire_time = fire_time
        self.next_fire_at = next_fire_at
        self.new = new
        self.overlap = overlap
        self.detail = detail

    async def apply(self, conn: AsyncConnection) -> Fired:
        # The schedule row is locked (PostgreSQL; SQLite's writer lock already serialises):
        # ticks of one schedule are decided one after another, so overlap sees the previous job.
        locked = (
            await conn.execute(
                select(schedules.c.enabled)
                .where(schedules.c.id == self.schedule_id)
                .with_for_update()
            )
        ).first()
        if locked is None or not locked.enabled:
            return Fired(outcome="gone")
        await conn.execute(_advance(self.schedule_id, self.next_fire_at))
        previous = await self._previous_running(conn) if self.new is not None else None
        action = overlap_action(Overlap(self.overlap), previous_running=previous is not None)
        outcome, job_id = "fired", None
        if self.new is None:
            outcome = "failed"
        elif action is OverlapAction.SKIP:
            outcome, self.detail = "skipped", f"the previous job {previous} has not ended"
        else:
            job_id = self.new.job["id"]
        if not await self._claim_tick(conn, outcome, job_id):
            return Fired(outcome="taken")
        canceled: str | None = None
        interrupted: list[tuple[int, int]] = []
        if job_id is not None and self.new is not None:
            if previous is not None and action is OverlapAction.CANCEL_AND_CREATE:
                try:
                    result = await CancelOp(previous).apply(conn)
                    canceled, interrupted = previous, result.interrupted
                except (Conflict, NotFound):
                    pass  # it ended (or was deleted) meanwhile: nothing to cancel
            await SubmitOp(self.new).apply(conn)
            self.wakes = True
        await conn.execute(
            delete(schedule_fires).where(
                schedule_fires.c.schedule_id == self.schedule_id,
                schedule_fires.c.fire_time < self.fire_time - FIRE_HISTORY_SECONDS,
            )
        )
        return Fired(outcome=outcome, job_id=job_id, canceled=canceled, interrupted=interrupted)

    async def _claim_tick(self, conn: AsyncConnection, outcome: str, job_id: str | None) -> bool:
        """Insert the tick's row; false when another process already did (its commit wins)."""
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(schedule_fires).values(
                        schedule_id=self.schedule_id,
                        fire_time=self.fire_time,
                        outcome=outcome,
                        job_id=job_id,
                        detail=self.detail,
                        created_at=time.time(),
                    )
                )
        except IntegrityError:
            return False
        return True

    async def _previous_running(self, conn: AsyncConnection) -> str | None:
        """The schedule's latest job, if it has not ended."""
        query = (
            select(jobs.c.id, jobs.c.status)
            .join(schedule_fires, schedule_fires.c.job_id == jobs.c.id)
            .where(
                schedule_fires.c.schedule_id == self.schedule_id,
                schedule_fires.c.fire_time < self.fire_time,
            )
            .order_by(schedule_fires.c.fire_time.desc())
            .limit(1)
        )
        row = (await conn.execute(query)).first()
        if row is None or JobStatus(row.status) in JOB_TERMINAL:
            return None
        return str(row.id)
