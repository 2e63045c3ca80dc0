"""API key rows: create, revoke, read. Only a key's SHA-256 and a short prefix are stored."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.errors import Conflict, NotFound
from engine.store.tables import api_keys
from engine.store.writer import WriteOp


class CreateKeyOp(WriteOp[Row[Any]]):
    batchable = False

    def __init__(self, *, name: str, key_hash: str, prefix: str, admin: bool) -> None:
        self.name = name
        self.row: dict[str, Any] = {"key_hash": key_hash, "prefix": prefix, "admin": admin}

    async def apply(self, conn: AsyncConnection) -> Row[Any]:
        name = self.name
        if await _active(conn, name) is not None:
            raise Conflict(f"a key named {name!r} exists; revoke it first")
        await conn.execute(insert(api_keys).values(name=name, created_at=time.time(), **self.row))
        row = await _active(conn, name)
        assert row is not None
        return row


class RevokeKeyOp(WriteOp[Row[Any]]):
    batchable = False

    def __init__(self, name: str) -> None:
        self.name = name

    async def apply(self, conn: AsyncConnection) -> Row[Any]:
        row = await _active(conn, self.name)
        if row is None:
            raise NotFound(f"no active key named {self.name!r}")
        await conn.execute(
            update(api_keys).where(api_keys.c.id == row.id).values(revoked_at=time.time())
        )
        return row


async def _active(conn: AsyncConnection, name: str) -> Row[Any] | None:
    query = select(api_keys).where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
    return (await conn.execute(query)).first()


async def key_rows(conn: AsyncConnection, *, active_only: bool) -> list[Row[Any]]:
    query = select(api_keys).order_by(api_keys.c.name, api_keys.c.id)
    if active_only:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return list((await conn.execute(query)).all())
