"""Everything that depends on which database is behind the URL lives here, and only here.

SQLite: PRAGMAs on every connection (WAL, ``synchronous``, busy timeout, foreign keys), a writer
engine whose transactions start with ``BEGIN IMMEDIATE`` (so a claim cannot race another process's
claim) and a reader engine that never takes the write lock. PostgreSQL: one pooled engine; the
claim's ``FOR UPDATE SKIP LOCKED`` comes from SQLAlchemy Core and needs nothing here.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from engine.errors import Unavailable
from engine.store.tables import jobs

SQLITE_BUSY_TIMEOUT_MS = 30_000
SYNCHRONOUS_LEVELS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


def dumps_json(value: Any) -> str:
    """orjson when it can (fast); the stdlib for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)


def loads_json(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


class FileChangeWatch:
    """Tells whether another process committed to a SQLite database, without a query.

    SQLite has no notification channel. In WAL mode every commit, from any process, writes to
    the ``-wal`` file, so a change of its size or modification time (an ``os.stat``, about a
    microsecond) means "look again". Checkpoints reset the file: also a change, also harmless.
    """

    def __init__(self, database: Path) -> None:
        self._wal = database.with_name(database.name + "-wal")
        self._last: tuple[int, int] | None = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self._wal.stat()
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns)

    def changed(self) -> bool:
        stamp = self._stamp()
        if stamp == self._last:
            return False
        self._last = stamp
        return True


@dataclass(frozen=True)
class Engines:
    """The engines of one database: ``writer`` takes write transactions, ``reader`` reads."""

    name: str
    writer: AsyncEngine
    reader: AsyncEngine
    #: the SQLite file, for :class:`FileChangeWatch` (None for in-memory and other databases)
    sqlite_file: Path | None = None

    def change_watch(self) -> FileChangeWatch | None:
        """A cheap cross-process "something was committed" check, where the database has one."""
        return FileChangeWatch(self.sqlite_file) if self.sqlite_file is not None else None

    def ready_listener(self, on_ready: Callable[[], None]) -> ReadyListener | None:
        """A notification channel for "tasks became ready", where the database has one."""
        return ReadyListener(self.reader, on_ready) if self.name == "postgresql" else None

    def events_listener(self, on_jobs: Callable[[list[str]], None]) -> EventsListener | None:
        """A notification channel for "these jobs have new events", where the database has one."""
        return EventsListener(self.reader, on_jobs) if self.name == "postgresql" else None

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


#: an arbitrary constant naming JobQueue's migration lock among PostgreSQL advisory locks
_MIGRATION_LOCK = 0x4A6F6251  # "JobQ"


async def serialize_migrations(conn: AsyncConnection) -> None:
    """Make concurrent schema upgrades (several processes starting at once) take turns.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do, the writer's
    ``BEGIN IMMEDIATE`` already admits one writer at a time.
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


async def lock_jobs(conn: AsyncConnection, job_ids: list[str]) -> None:
    """Make the transactions that settle the same job take turns (PostgreSQL: the job rows
    ``FOR UPDATE``), so that each reads the task states the previous one committed. SQLite:
    nothing to do, one writer at a time."""
    if conn.dialect.name == "postgresql" and job_ids:
        await conn.execute(
            select(jobs.c.id).where(jobs.c.id.in_(sorted(job_ids))).with_for_update()
        )


#: SQLSTATEs of a PostgreSQL server going away or coming back: class 08 (connection exception),
#: 57P01 admin shutdown, 57P02 crash shutdown, 57P03 "the database system is shutting down" /
#: "is starting up" (refused connections during a restart)
_SERVER_AWAY = ("08", "57P01", "57P02", "57P03")


def server_away(exc: BaseException) -> bool:
    """A PostgreSQL error, raw from asyncpg or wrapped by SQLAlchemy, that says the server is
    restarting or the connection is gone. SQLAlchemy wraps most of these in its generic
    ``DBAPIError`` (not ``OperationalError``): only the SQLSTATE tells them from a bug."""
    for err in (exc, getattr(exc, "orig", None)):
        state = getattr(err, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_SERVER_AWAY):
            return True
    return False


#: the PostgreSQL channel on which committed work is announced to workers in other processes
CHANNEL = "jobqueue_ready"


async def announce_ready(conn: AsyncConnection) -> None:
    """Inside a write transaction that made tasks ready: tell other processes' workers.

    PostgreSQL delivers a ``NOTIFY`` when (and only if) the transaction commits. SQLite has no
    channel; its workers watch the WAL file instead (:class:`FileChangeWatch`).
    """
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"NOTIFY {CHANNEL}"))


#: the PostgreSQL channel on which committed job events are announced (payload: job ids)
EVENTS_CHANNEL = "jobqueue_events"
#: a NOTIFY payload must stay under 8000 bytes
_NOTIFY_MAX = 7000
#: the namespace of the advisory locks that order one job's events (``pg_advisory_xact_lock``
#: with two keys: this one and a hash of the job id)
_EVENTS_LOCK = 0x4A514576  # "JQEv"


async def order_job_events(conn: AsyncConnection, job_ids: list[str]) -> None:
    """Before a transaction inserts events of these jobs: wait for the other transactions that
    are inserting events of the same jobs to commit.

    On PostgreSQL an id is drawn when the row is inserted, not when it commits; without this,
    two transactions writing events of one job could commit out of id order, and a reader that
    saw the later id first would skip the earlier one. The locks are taken in one order (sorted
    keys) and are the last thing a transaction waits for, so they cannot deadlock. SQLite's
    writers already take turns: nothing to do.
    """
    if conn.dialect.name == "postgresql" and job_ids:
        await conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(:ns, k) FROM "
                "(SELECT DISTINCT hashtext(j) AS k FROM unnest(CAST(:ids AS text[])) AS j "
                "ORDER BY k) AS keys"
            ),
            {"ns": _EVENTS_LOCK, "ids": sorted(job_ids)},
        )


async def announce_events(conn: AsyncConnection, job_ids: list[str]) -> None:
    """Inside the transaction that wrote events: tell other processes' streams which jobs
    changed (PostgreSQL ``NOTIFY``, delivered on commit). SQLite streams poll instead."""
    if conn.dialect.name != "postgresql" or not job_ids:
        return
    chunk: list[str] = []
    size = 0
    for job_id in sorted(job_ids):
        if chunk and size + len(job_id) + 1 > _NOTIFY_MAX:
            await _notify_events(conn, chunk)
            chunk, size = [], 0
        chunk.append(job_id)
        size += len(job_id) + 1
    await _notify_events(conn, chunk)


async def _notify_events(conn: AsyncConnection, job_ids: list[str]) -> None:
    await conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": EVENTS_CHANNEL, "payload": ",".join(job_ids)},
    )


class ReadyListener:
    """PostgreSQL ``LISTEN`` on a connection of its own; calls ``on_ready`` per notification."""

    #: the channel it listens on
    channel = CHANNEL

    def __init__(self, engine: AsyncEngine, on_ready: Callable[[], None]) -> None:
        self._engine = engine
        self._on_ready = on_ready
        self._conn: Any = None
        self._driver: Any = None

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_ready()

    async def start(self) -> None:
        await self.close()  # a lost connection goes back to the pool, not to the GC
        try:
            self._conn = await self._engine.connect()
            raw = await self._conn.get_raw_connection()
            self._driver = raw.driver_connection
            await self._driver.add_listener(self.channel, self._notified)
        except Exception as exc:
            # After a restart the pool can hand out a connection the server already closed
            # (asyncpg then raises its own InterfaceError), or the server is still starting.
            if (self._driver is not None and self._driver.is_closed()) or server_away(exc):
                raise Unavailable(f"cannot listen for ready tasks: {exc!r}") from exc
            raise

    @property
    def listening(self) -> bool:
        """False before :meth:`start` and once the connection was lost (a restarted server)."""
        return self._driver is not None and not self._driver.is_closed()

    async def close(self) -> None:
        self._driver = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.invalidate()
                await conn.close()


class EventsListener(ReadyListener):
    """PostgreSQL ``LISTEN`` for job events: calls ``on_jobs`` with the job ids of each
    notification."""

    channel = EVENTS_CHANNEL

    def __init__(self, engine: AsyncEngine, on_jobs: Callable[[list[str]], None]) -> None:
        super().__init__(engine, lambda: None)
        self._on_jobs = on_jobs

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_jobs([j for j in payload.split(",") if j])


def create_engines(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 8) -> Engines:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engines(url, sqlite_synchronous.upper(), pool_size)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        json_serializer=dumps_json,
        json_deserializer=loads_json,
    )
    return Engines(parsed.get_backend_name(), engine, engine)


def _sqlite_engines(url: str, synchronous: str, pool_size: int) -> Engines:
    if synchronous not in SYNCHRONOUS_LEVELS:
        raise ValueError(f"JOBQUEUE_SQLITE_SYNCHRONOUS must be one of {sorted(SYNCHRONOUS_LEVELS)}")
    database = make_url(url).database
    sqlite_file = None
    if database and database != ":memory:":
        sqlite_file = Path(database).expanduser().resolve()
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        "json_serializer": dumps_json,
        "json_deserializer": loads_json,
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    }
    writer = create_async_engine(url, pool_size=1, max_overflow=1, **common)
    reader = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, **common)
    _configure_sqlite(writer, synchronous, begin="BEGIN IMMEDIATE")
    _configure_sqlite(reader, synchronous, begin=None)
    return Engines("sqlite", writer, reader, sqlite_file)


def _configure_sqlite(engine: AsyncEngine, synchronous: str, *, begin: str | None) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Our own BEGIN below replaces the driver's implicit one (SQLAlchemy's aiosqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if begin is not None:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)
