"""Workflow definitions: save a version (an identical document keeps its version), read, delete.

A definition's versions are immutable rows of ``workflows``; ``workflow_uses`` lists the
definitions the latest version of each starts as sub-workflows, so deleting one in use is
refused and circles of definitions are found when one is saved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.errors import Conflict, NotFound
from engine.store.tables import schedules, workflow_uses, workflows
from engine.store.writer import WriteOp


@dataclass(frozen=True, kw_only=True)
class NewDefinition:
    name: str
    description: str | None
    params_schema: Any
    document: dict[str, Any]
    digest: str
    #: the definitions this one starts as sub-workflows
    uses: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SavedDefinition:
    row: Row[Any]
    created: bool


async def definition_row(conn: AsyncConnection, name: str, version: int | None) -> Row[Any]:
    query = select(workflows).where(workflows.c.name == name)
    if version is None:
        query = query.order_by(workflows.c.version.desc()).limit(1)
    else:
        query = query.where(workflows.c.version == version)
    row = (await conn.execute(query)).first()
    if row is None:
        which = f" has no version {version}" if version is not None else " not found"
        raise NotFound(f"workflow {name!r}{which}")
    return row


async def definition_versions(conn: AsyncConnection, name: str) -> list[Row[Any]]:
    query = select(workflows).where(workflows.c.name == name).order_by(workflows.c.version)
    return list((await conn.execute(query)).all())


async def latest_definitions(conn: AsyncConnection) -> list[Row[Any]]:
    latest = (
        select(workflows.c.name, func.max(workflows.c.version).label("version"))
        .group_by(workflows.c.name)
        .subquery()
    )
    query = (
        select(workflows)
        .join(
            latest,
            (workflows.c.name == latest.c.name) & (workflows.c.version == latest.c.version),
        )
        .order_by(workflows.c.name)
    )
    return list((await conn.execute(query)).all())


async def uses_graph(conn: AsyncConnection) -> dict[str, list[str]]:
    """Every definition's sub-workflow uses: ``{workflow: [uses, ...]}``."""
    graph: dict[str, list[str]] = {}
    for row in await conn.execute(select(workflow_uses)):
        graph.setdefault(row.workflow, []).append(row.uses)
    return graph


class PutDefinitionOp(WriteOp[SavedDefinition]):
    batchable = False

    def __init__(self, new: NewDefinition) -> None:
        self.new = new

    async def apply(self, conn: AsyncConnection) -> SavedDefinition:
        new = self.new
        current = (
            await conn.execute(
                select(workflows.c.version, workflows.c.digest)
                .where(workflows.c.name == new.name)
                .order_by(workflows.c.version.desc())
                .limit(1)
            )
        ).first()
        if current is not None and current.digest == new.digest:
            return SavedDefinition(
                row=await definition_row(conn, new.name, current.version), created=False
            )
        version = 1 if current is None else current.version + 1
        await conn.execute(
            insert(workflows).values(
                name=new.name,
                version=version,
                description=new.description,
                params_schema=new.params_schema,
                document=new.document,
                digest=new.digest,
                created_at=time.time(),
            )
        )
        await conn.execute(delete(workflow_uses).where(workflow_uses.c.workflow == new.name))
        if new.uses:
            await conn.execute(
                insert(workflow_uses), [{"workflow": new.name, "uses": u} for u in new.uses]
            )
        return SavedDefinition(row=await definition_row(conn, new.name, version), created=True)


class DeleteDefinitionOp(WriteOp[None]):
    batchable = False

    def __init__(self, name: str) -> None:
        self.name = name

    async def apply(self, conn: AsyncConnection) -> None:
        await definition_row(conn, self.name, None)
        users = (
            (
                await conn.execute(
                    select(workflow_uses.c.workflow).where(
                        workflow_uses.c.uses == self.name, workflow_uses.c.workflow != self.name
                    )
                )
            )
            .scalars()
            .all()
        )
        if users:
            listed = ", ".join(repr(u) for u in sorted(users))
            raise Conflict(f"workflow {self.name!r} is used as a sub-workflow by {listed}")
        scheduled = await conn.execute(
            select(schedules.c.name, schedules.c.workflow).where(schedules.c.workflow.is_not(None))
        )
        starters = sorted(r.name for r in scheduled if (r.workflow or {}).get("name") == self.name)
        if starters:
            listed = ", ".join(repr(s) for s in starters)
            raise Conflict(f"workflow {self.name!r} is started by the schedule(s) {listed}")
        await conn.execute(delete(workflow_uses).where(workflow_uses.c.workflow == self.name))
        await conn.execute(delete(workflows).where(workflows.c.name == self.name))
