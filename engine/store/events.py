"""Job events: every status change of a job or a task, stored by the transaction that makes it.

The writes record what they changed (:func:`task_changed`, :func:`job_changed`) on the
connection they run on; the group-commit writer opens the collection when a transaction begins
(:func:`collect`) and inserts the whole batch's events with one ``executemany`` just before the
commit (:func:`flush`). So an event exists exactly when its change was committed, and in the
order the changes were made. Readers page through them per job (:func:`events_after`).

A job's creation is not an event: its first state is what a reader's snapshot shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.store.dialects import announce_events, order_job_events
from engine.store.tables import job_events

#: the key under which a transaction's events wait in ``conn.info`` until :func:`flush`
_KEY = "jobqueue.events"


def collect(conn: AsyncConnection) -> None:
    """A write transaction begins on ``conn``: the events it records are kept for :func:`flush`
    (and those of a transaction that failed are dropped)."""
    conn.info[_KEY] = []


def _pending(conn: AsyncConnection) -> list[dict[str, Any]] | None:
    pending: list[dict[str, Any]] | None = conn.info.get(_KEY)
    return pending


def task_changed(
    conn: AsyncConnection,
    job_id: str,
    task: str,
    status: str,
    attempt: int,
    at: float,
    *,
    error: Any = None,
    next_attempt_at: float | None = None,
) -> None:
    """A task's status changed (``status``: the new one)."""
    pending = _pending(conn)
    if pending is None:
        return
    payload: dict[str, Any] = {
        "type": "task",
        "task": task,
        "status": status,
        "attempt": attempt,
        "error": error,
    }
    if next_attempt_at is not None:
        payload["next_attempt_at"] = next_attempt_at
    pending.append({"job_id": job_id, "at": at, "payload": payload})


def job_changed(conn: AsyncConnection, job_id: str, status: str, at: float) -> None:
    """A job's status changed."""
    pending = _pending(conn)
    if pending is not None:
        pending.append({"job_id": job_id, "at": at, "payload": {"type": "job", "status": status}})


async def flush(conn: AsyncConnection, *, announce: bool = True) -> set[str]:
    """Insert the events recorded in this transaction (call it last, before the commit); the
    ids of the jobs that have new events. ``announce``: tell other processes through the
    database (PostgreSQL ``NOTIFY``); off when a broker carries the news."""
    pending = conn.info.pop(_KEY, None)
    if not pending:
        return set()
    job_ids = {e["job_id"] for e in pending}
    ordered = sorted(job_ids)
    await order_job_events(conn, ordered)
    await conn.execute(insert(job_events), pending)
    if announce:
        await announce_events(conn, ordered)
    return job_ids


async def events_after(
    conn: AsyncConnection, job_id: str, after: int, limit: int
) -> Sequence[Row[Any]]:
    """Up to ``limit`` events of one job with an id above ``after``, oldest first."""
    query: Select[Any] = (
        select(job_events.c.id, job_events.c.at, job_events.c.payload)
        .where(job_events.c.job_id == job_id, job_events.c.id > after)
        .order_by(job_events.c.id)
        .limit(limit)
    )
    return (await conn.execute(query)).all()


async def last_event_id(conn: AsyncConnection, job_id: str) -> int:
    """The id of the job's latest event (0 when it has none yet)."""
    query = select(func.max(job_events.c.id)).where(job_events.c.job_id == job_id)
    return int((await conn.execute(query)).scalar_one_or_none() or 0)


async def events_behind(conn: AsyncConnection, job_id: str, after: int) -> int:
    """How many events of the job have an id above ``after``."""
    query = (
        select(func.count())
        .select_from(job_events)
        .where(job_events.c.job_id == job_id, job_events.c.id > after)
    )
    return int((await conn.execute(query)).scalar_one())
