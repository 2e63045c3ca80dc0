"""A claim undone for a busy host (Store.defer): queued again at the given time, the attempt
number and the attempt row as if never claimed, and a late writer of that attempt fenced out.
``tests/pg`` runs it on PostgreSQL too."""

from __future__ import annotations

import dataclasses
import time

from engine import Engine
from engine.states import AttemptStatus, TaskStatus
from tests.support.store import store_of, submit, success, task_row


async def test_defer_undoes_the_claim_and_fences_the_deferred_attempt(engine: Engine) -> None:
    store = store_of(engine)
    job_id = await submit(engine, {"url": "http://127.0.0.1:9/x"})
    (claimed,) = await store.claim(worker="w", limit=1, lease_seconds=30)
    assert claimed.attempt == 1
    due = time.time() + 60
    deferred = dataclasses.replace(
        success(claimed.id, job_id, claimed.attempt),
        status=TaskStatus.QUEUED,
        attempt_status=AttemptStatus.INTERRUPTED,
        counts=False,
        deferred=True,
        next_attempt_at=due,
        error={"type": "host_busy", "message": "host 127.0.0.1 is at its cap"},
    )
    assert await store.defer(deferred)
    row = await task_row(engine, job_id)
    assert (row.status, row.attempt, row.tries, row.lease_owner) == ("queued", 0, 0, None)
    assert row.next_attempt_at == due
    assert row.error["type"] == "host_busy"
    assert await engine.get_attempts(job_id, "main") == []
    assert await store.claim(worker="w", limit=1, lease_seconds=30) == []  # not due yet

    # the late outcome of the deferred attempt, and a second deferral of it, are refused
    assert not await store.complete(success(claimed.id, job_id, claimed.attempt))
    assert not await store.defer(deferred)
    assert (await task_row(engine, job_id)).status == "queued"
