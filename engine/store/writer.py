"""Group commit: one writer task applies every queued write in one transaction.

aiosqlite costs about half a millisecond per commit, and ``synchronous=FULL`` adds an fsync:
per-job transactions cannot be fast, batches can. Callers hand a :class:`WriteOp` to
:meth:`BatchWriter.run` and await its result; the writer drains the queue, applies runs of ops of
the same class together (``apply_many`` turns N inserts into one ``executemany``), commits once
and only then resolves the callers' futures — so a ``201`` still means "on disk". If a batch
fails, each op is retried alone so that one bad op cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from engine.store import events
from engine.store.dialects import announce_ready

T = TypeVar("T")
log = logging.getLogger("jobqueue.writer")


class WriteOp(Generic[T]):
    """One unit of writing. Subclasses override :meth:`apply` and, to batch, :meth:`apply_many`."""

    #: set during apply when the committed write makes tasks ready (wakes the workers)
    wakes: bool = False
    batchable: ClassVar[bool] = True

    async def apply(self, conn: AsyncConnection) -> T:
        raise NotImplementedError

    @classmethod
    async def apply_many(cls, conn: AsyncConnection, ops: Sequence[Any]) -> list[Any]:
        return [await op.apply(conn) for op in ops]


class BatchWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_batch: int = 512,
        on_wake: Callable[[], None] | None = None,
        on_events: Callable[[set[str]], None] | None = None,
        notify_in_db: bool = True,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._on_wake = on_wake
        #: called after a commit that wrote job events, with the ids of those jobs
        self._on_events = on_events
        #: announce ready tasks inside the transaction (PostgreSQL ``NOTIFY``); off when a
        #: broker carries the wake-ups
        self._notify_in_db = notify_in_db
        self._queue: asyncio.Queue[tuple[WriteOp[Any], asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._conn: AsyncConnection | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="jobqueue-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def run(self, op: WriteOp[T]) -> T:
        if self._task is None:
            raise RuntimeError("the writer is not running")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, future))
        return await future

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._apply(batch)
            except Exception as exc:
                # Never die with writes queued behind: every caller hears of the failure.
                log.exception("the writer failed a batch of %d writes", len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _apply(self, batch: list[tuple[WriteOp[Any], asyncio.Future[Any]]]) -> None:
        live = [(op, fut) for op, fut in batch if not fut.cancelled()]
        try:
            results, changed = await self._transaction([op for op, _ in live])
        except Exception as exc:
            if len(live) == 1:
                if not live[0][1].done():
                    live[0][1].set_exception(exc)
                return
            log.warning("a batch of %d writes failed (%r); applying each alone", len(live), exc)
            for op, fut in live:
                await self._single(op, fut)
            return
        self._after_commit([op for op, _ in live], changed)
        for (_, fut), result in zip(live, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def _single(self, op: WriteOp[Any], fut: asyncio.Future[Any]) -> None:
        op.wakes = False
        try:
            (result,), changed = await self._transaction([op])
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
            return
        self._after_commit([op], changed)
        if not fut.done():
            fut.set_result(result)

    async def _connection(self) -> AsyncConnection:
        """The writer keeps one connection: a pool checkout per batch is measurable."""
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = await self._engine.connect()
        return self._conn

    async def _transaction(self, ops: list[WriteOp[Any]]) -> tuple[list[Any], set[str]]:
        """Apply ``ops`` in one transaction; their results, and the jobs with new events."""
        results: list[Any] = []
        conn = await self._connection()
        async with conn.begin():
            events.collect(conn)
            start = 0
            while start < len(ops):
                cls = type(ops[start])
                end = start + 1
                if cls.batchable:
                    while end < len(ops) and type(ops[end]) is cls:
                        end += 1
                results.extend(await cls.apply_many(conn, ops[start:end]))
                start = end
            changed = await events.flush(conn, announce=self._notify_in_db)
            if self._notify_in_db and any(op.wakes for op in ops):
                await announce_ready(conn)
        return results, changed

    def _after_commit(self, ops: list[WriteOp[Any]], changed: set[str]) -> None:
        if self._on_wake is not None and any(op.wakes for op in ops):
            self._on_wake()
        if self._on_events is not None and changed:
            self._on_events(changed)
