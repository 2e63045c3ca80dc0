"""The store behind an engine's facade, for tests that write or check what was written, and
small helpers around it."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from engine import Engine
from engine.states import AttemptStatus, TaskStatus
from engine.store import Outcome, Store
from engine.store.tables import tasks
from schemas.jobs import parse_job_document


def store_of(engine: Engine) -> Store:
    return engine._store


async def submit(engine: Engine, doc: dict[str, Any]) -> str:
    """Submit a job document (a single call when it has no ``tasks``); its id."""
    return (await engine.submit(parse_job_document(doc), single_call="tasks" not in doc)).job_id


async def task_row(engine: Engine, job_id: str, name: str = "main") -> Any:
    """The stored row of one task."""
    async with store_of(engine).read() as conn:
        query = select(tasks).where(tasks.c.job_id == job_id, tasks.c.name == name)
        return (await conn.execute(query)).one()


def success(task_id: int, job_id: str, attempt: int, body: Any = None) -> Outcome:
    """What a worker hands in when attempt ``attempt`` of a single-call job answered 200."""
    return Outcome(
        task_id=task_id,
        job_id=job_id,
        attempt=attempt,
        solo=True,
        status=TaskStatus.SUCCEEDED,
        attempt_status=AttemptStatus.SUCCEEDED,
        finished_at=time.time(),
        response_status=200,
        response_headers={"content-type": "application/json"},
        response_body={"ok": True} if body is None else body,
        duration_ms=1.0,
    )
