"""Read queries. They run on the reader engine (on SQLite: never the write lock)."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Row, Select, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.errors import NotFound
from engine.states import TaskStatus
from engine.store.tables import attempts, interface_masters, job_tags, jobs, tasks


def _visible(job_id: str, owner: str | None) -> Any:
    now = time.time()
    clause = and_(jobs.c.id == job_id, or_(jobs.c.expires_at.is_(None), jobs.c.expires_at >= now))
    if owner is not None:
        clause = and_(clause, jobs.c.owner == owner)
    return clause


async def job_row(conn: AsyncConnection, job_id: str, owner: str | None = None) -> Row[Any]:
    row = (await conn.execute(select(jobs).where(_visible(job_id, owner)))).first()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return row


_TASK_COLUMNS = (
    tasks.c.id,
    tasks.c.name,
    tasks.c.position,
    tasks.c.status,
    tasks.c.attempt,
    tasks.c.tries,
    tasks.c.max_attempts,
    tasks.c.spec,
    tasks.c.upstream,
    tasks.c.started_at,
    tasks.c.finished_at,
    tasks.c.skip_reason,
    tasks.c.error,
    tasks.c.items_total,
    tasks.c.items_succeeded,
    tasks.c.items_failed,
    tasks.c.child_job_id,
)
_RESULT_COLUMNS = (
    tasks.c.response_status,
    tasks.c.response_headers,
    tasks.c.response_body,
    tasks.c.response_truncated,
    tasks.c.duration_ms,
)
#: built once: building a statement and its cache key per status poll cost more than the read
_TASK_ROWS: dict[bool, Select[Any]] = {
    with_results: select(*_TASK_COLUMNS, *(_RESULT_COLUMNS if with_results else ()))
    .where(tasks.c.job_id == bindparam("job_id"), tasks.c.parent_id.is_(None))
    .order_by(tasks.c.position)
    for with_results in (False, True)
}


async def task_rows(
    conn: AsyncConnection, job_id: str, *, with_results: bool = False
) -> Sequence[Row[Any]]:
    return (await conn.execute(_TASK_ROWS[with_results], {"job_id": job_id})).all()


async def _parent_id(conn: AsyncConnection, job_id: str, task: str) -> int:
    row = (
        await conn.execute(
            select(tasks.c.id, tasks.c.items_total).where(
                tasks.c.job_id == job_id, tasks.c.name == task, tasks.c.parent_id.is_(None)
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"job {job_id} has no task {task!r}")
    if row.items_total is None:
        raise NotFound(f"task {task!r} of job {job_id} has no instances (yet, or no for_each)")
    return int(row.id)


async def instance_rows(
    conn: AsyncConnection, job_id: str, task: str, *, start: int, limit: int
) -> Sequence[Any]:
    """Instances of a ``for_each`` task from item ``start`` on, in item order (``limit`` + 1
    rows, so that the caller knows whether more follow)."""
    parent = await _parent_id(conn, job_id, task)
    query = (
        select(
            tasks.c.item_index,
            tasks.c.status,
            tasks.c.attempt,
            tasks.c.response_body,
            tasks.c.error,
            tasks.c.child_job_id,
        )
        .where(tasks.c.parent_id == parent, tasks.c.item_index >= start)
        .order_by(tasks.c.item_index)
        .limit(limit + 1)
    )
    return (await conn.execute(query)).all()


async def instance_attempt_rows(
    conn: AsyncConnection, job_id: str, task: str, index: int
) -> Sequence[Row[Any]]:
    parent = await _parent_id(conn, job_id, task)
    instance = (
        await conn.execute(
            select(tasks.c.id).where(tasks.c.parent_id == parent, tasks.c.item_index == index)
        )
    ).scalar_one_or_none()
    if instance is None:
        raise NotFound(f"task {task!r} of job {job_id} has no instance {index}")
    query = select(attempts).where(attempts.c.task_id == instance).order_by(attempts.c.attempt)
    return (await conn.execute(query)).all()


async def running_instances(conn: AsyncConnection, job_id: str) -> dict[int, int]:
    """How many instances of each ``for_each`` task of a job are running: {parent id: n}."""
    rows = await conn.execute(
        select(tasks.c.parent_id, func.count())
        .where(
            tasks.c.job_id == job_id,
            tasks.c.parent_id.is_not(None),
            tasks.c.status == TaskStatus.RUNNING.value,
        )
        .group_by(tasks.c.parent_id)
    )
    return {r[0]: r[1] for r in rows}


async def attempt_rows(conn: AsyncConnection, job_id: str, task: str) -> Sequence[Row[Any]]:
    task_id = (
        await conn.execute(select(tasks.c.id).where(tasks.c.job_id == job_id, tasks.c.name == task))
    ).scalar_one_or_none()
    if task_id is None:
        raise NotFound(f"job {job_id} has no task {task!r}")
    query = select(attempts).where(attempts.c.task_id == task_id).order_by(attempts.c.attempt)
    return (await conn.execute(query)).all()


@dataclass(frozen=True, kw_only=True)
class JobFilter:
    status: str | None = None
    tag: str | None = None
    name: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    owner: str | None = None
    workflow: str | None = None


def encode_cursor(created_at: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at, job_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """Raises ValueError on anything that is not a cursor we made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = orjson.loads(raw)
    except Exception as exc:
        raise ValueError("cursor is not valid") from exc
    if not isinstance(created_at, int | float) or not isinstance(job_id, str):
        raise ValueError("cursor is not valid")
    return float(created_at), job_id


async def list_job_rows(
    conn: AsyncConnection, flt: JobFilter, *, limit: int, cursor: tuple[float, str] | None
) -> list[Row[Any]]:
    """Newest first; keyset paging on (created_at, id)."""
    now = time.time()
    query = select(jobs).where(or_(jobs.c.expires_at.is_(None), jobs.c.expires_at >= now))
    if flt.status:
        query = query.where(jobs.c.status == flt.status)
    if flt.name:
        query = query.where(jobs.c.name == flt.name)
    if flt.owner is not None:
        query = query.where(jobs.c.owner == flt.owner)
    if flt.workflow:
        query = query.where(jobs.c.workflow_name == flt.workflow)
    if flt.created_after is not None:
        query = query.where(jobs.c.created_at >= flt.created_after)
    if flt.created_before is not None:
        query = query.where(jobs.c.created_at < flt.created_before)
    if flt.tag:
        tagged = select(job_tags.c.job_id).where(job_tags.c.tag == flt.tag)
        query = query.where(jobs.c.id.in_(tagged))
    if cursor is not None:
        created_at, job_id = cursor
        query = query.where(
            or_(
                jobs.c.created_at < created_at,
                and_(jobs.c.created_at == created_at, jobs.c.id < job_id),
            )
        )
    query = query.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())


async def render_inputs(
    conn: AsyncConnection, job_id: str, upstream: Sequence[str]
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The job's params, name and context and the stored outputs of ``upstream``, for rendering."""
    job = (
        await conn.execute(
            select(jobs.c.id, jobs.c.name, jobs.c.params, jobs.c.context).where(jobs.c.id == job_id)
        )
    ).first()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    outputs: dict[str, dict[str, Any]] = {}
    if upstream:
        rows = await conn.execute(
            select(
                tasks.c.name,
                tasks.c.status,
                tasks.c.response_body,
                tasks.c.response_status,
                tasks.c.response_headers,
            ).where(tasks.c.job_id == job_id, tasks.c.name.in_(list(upstream)))
        )
        for row in rows:
            outputs[row.name] = {
                "output": row.response_body,
                "status_code": row.response_status,
                "headers": row.response_headers or {},
                "status": row.status,
            }
    return job, outputs


async def running_states(
    conn: AsyncConnection, task_ids: Sequence[int]
) -> dict[int, tuple[str, int]]:
    rows = await conn.execute(
        select(tasks.c.id, tasks.c.status, tasks.c.attempt).where(tasks.c.id.in_(list(task_ids)))
    )
    return {r.id: (r.status, r.attempt) for r in rows}


async def next_due(conn: AsyncConnection, job_ids: Sequence[str] | None = None) -> float | None:
    """When the earliest queued task (of ``job_ids``, if given) becomes due: for a worker
    deciding how long to sleep."""
    query = select(tasks.c.next_attempt_at).where(tasks.c.status == TaskStatus.QUEUED.value)
    if job_ids is not None:
        query = query.where(tasks.c.job_id.in_(list(job_ids)))
    query = query.order_by(tasks.c.next_attempt_at).limit(1)
    return (await conn.execute(query)).scalar_one_or_none()


async def master_rows(conn: AsyncConnection, names: Sequence[str] | None = None) -> list[Row[Any]]:
    query = select(interface_masters).order_by(interface_masters.c.name)
    if names is not None:
        query = query.where(interface_masters.c.name.in_(list(names)))
    return list((await conn.execute(query)).all())


async def queue_stats(conn: AsyncConnection, now: float) -> tuple[int, float | None]:
    """How many queued tasks are due, and the earliest due time among them."""
    row = (
        await conn.execute(
            select(func.count(), func.min(tasks.c.next_attempt_at)).where(
                tasks.c.status == TaskStatus.QUEUED.value, tasks.c.next_attempt_at <= now
            )
        )
    ).one()
    return int(row[0]), row[1]


async def task_row(conn: AsyncConnection, job_id: str, task: str) -> Row[Any]:
    """One task with everything stored about it (``NotFound`` for an unknown name)."""
    row = (
        await conn.execute(select(tasks).where(tasks.c.job_id == job_id, tasks.c.name == task))
    ).first()
    if row is None:
        raise NotFound(f"job {job_id} has no task {task!r}")
    return row


async def job_counts(conn: AsyncConnection, owner: str | None = None) -> dict[str, int]:
    """How many jobs (not past their TTL) have each status."""
    now = time.time()
    query = select(jobs.c.status, func.count()).where(
        or_(jobs.c.expires_at.is_(None), jobs.c.expires_at >= now)
    )
    if owner is not None:
        query = query.where(jobs.c.owner == owner)
    rows = await conn.execute(query.group_by(jobs.c.status))
    return {status: int(n) for status, n in rows}


async def finished_since(
    conn: AsyncConnection, since: float, owner: str | None = None
) -> Sequence[Row[Any]]:
    """(finished_at, status) of the jobs that ended since ``since``."""
    query: Select[Any] = select(jobs.c.finished_at, jobs.c.status).where(
        jobs.c.finished_at >= since
    )
    if owner is not None:
        query = query.where(jobs.c.owner == owner)
    return (await conn.execute(query)).all()
