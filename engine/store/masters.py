"""InterfaceMaster writes: create, update (bumps ``version``), delete (refused while in use)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Row, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from ulid import ULID

from engine.errors import Conflict, NotFound
from engine.states import JobStatus
from engine.store.tables import interface_masters, job_interfaces, jobs
from engine.store.writer import WriteOp

_ACTIVE = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]


def _match(key: str) -> Any:
    return or_(interface_masters.c.id == key, interface_masters.c.name == key)


async def master_row(conn: AsyncConnection, key: str) -> Row[Any]:
    row = (await conn.execute(select(interface_masters).where(_match(key)))).first()
    if row is None:
        raise NotFound(f"interface master {key!r} not found")
    return row


class CreateMasterOp(WriteOp[Row[Any]]):
    batchable = False

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    async def apply(self, conn: AsyncConnection) -> Row[Any]:
        name = self.fields["name"]
        exists = await conn.execute(
            select(interface_masters.c.id).where(interface_masters.c.name == name)
        )
        if exists.first() is not None:
            raise Conflict(f"an interface master named {name!r} already exists")
        now = time.time()
        master_id = f"im_{ULID()}"
        row = {"id": master_id, "version": 1, "created_at": now, "updated_at": now}
        await conn.execute(insert(interface_masters).values(**row, **self.fields))
        return await master_row(conn, master_id)


class UpdateMasterOp(WriteOp[Row[Any]]):
    batchable = False

    def __init__(self, key: str, fields: dict[str, Any]) -> None:
        self.key = key
        self.fields = fields

    async def apply(self, conn: AsyncConnection) -> Row[Any]:
        current = await master_row(conn, self.key)
        new_name = self.fields.get("name", current.name)
        if new_name != current.name:
            clash = await conn.execute(
                select(interface_masters.c.id).where(interface_masters.c.name == new_name)
            )
            if clash.first() is not None:
                raise Conflict(f"an interface master named {new_name!r} already exists")
        await conn.execute(
            update(interface_masters)
            .where(interface_masters.c.id == current.id)
            .values(**self.fields, version=current.version + 1, updated_at=time.time())
        )
        return await master_row(conn, current.id)


class DeleteMasterOp(WriteOp[None]):
    batchable = False

    def __init__(self, key: str) -> None:
        self.key = key

    async def apply(self, conn: AsyncConnection) -> None:
        current = await master_row(conn, self.key)
        in_use = await conn.execute(
            select(jobs.c.id)
            .join(job_interfaces, job_interfaces.c.job_id == jobs.c.id)
            .where(job_interfaces.c.interface == current.name, jobs.c.status.in_(_ACTIVE))
            .limit(1)
        )
        job = in_use.scalar_one_or_none()
        if job is not None:
            raise Conflict(
                f"interface master {current.name!r} is used by job {job}, which has not ended"
            )
        await conn.execute(delete(interface_masters).where(interface_masters.c.id == current.id))
