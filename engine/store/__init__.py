"""Persistence: tables, migrations, the group-commit writer and the queries of the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from engine.store import migrate
from engine.store.dialects import Engines, create_engines
from engine.store.wakeup import Wakeup
from engine.store.writer import BatchWriter, WriteOp

T = TypeVar("T")

__all__ = ["Store"]


class Store:
    """One database: its engines, its writer and the in-process wake-up."""

    def __init__(self, engines: Engines, *, write_batch_max: int = 512) -> None:
        self.engines = engines
        self.wakeup = Wakeup()
        self.writer = BatchWriter(
            engines.writer, max_batch=write_batch_max, on_wake=self.wakeup.notify
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        migrate_schema: bool = True,
        write_batch_max: int = 512,
    ) -> Store:
        engines = create_engines(url, sqlite_synchronous=sqlite_synchronous)
        if migrate_schema:
            await migrate.upgrade(engines.writer)
        store = cls(engines, write_batch_max=write_batch_max)
        store.writer.start()
        return store

    async def close(self) -> None:
        await self.writer.stop()
        await self.engines.dispose()

    async def write(self, op: WriteOp[T]) -> T:
        return await self.writer.run(op)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engines.reader.connect() as conn:
            yield conn
