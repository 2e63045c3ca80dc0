"""Delivery behaviours that a mutation run of the store and the worker found unpinned.

Each test states what a user or an operator relies on: a hand-back at shutdown touches only the
attempts it names, the attempt history says when every attempt ended, a job's ``started_at`` is
when it first started, a batch of outcomes refuses a task that no longer runs, and the reaper's
log lines name the task.

Store-level, on a real SQLite file (no call is made: the tasks are claimed and ended by hand).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from engine import Engine
from engine.store.outcomes import CompleteOp
from tests.support.store import store_of, submit, success, task_row

NEVER_CALLED = {"url": "http://127.0.0.1:9/never-called"}


async def history(engine: Engine, job_id: str) -> list[tuple[int, str]]:
    return [(a["attempt"], a["status"]) for a in await engine.get_attempts(job_id, "main")]


# --- hand-back at shutdown ----------------------------------------------------------------------


async def test_hand_back_requeues_only_the_attempts_it_names(engine: Engine) -> None:
    """A worker shutting down hands back its own call: another worker's running task with the
    same attempt number keeps running, and the interrupted attempt says when it ended."""
    store = store_of(engine)
    mine = await submit(engine, NEVER_CALLED)
    other = await submit(engine, NEVER_CALLED)
    (a,) = await store.claim(worker="leaving", limit=1, lease_seconds=60)
    (b,) = await store.claim(worker="staying", limit=1, lease_seconds=60)
    assert (a.job_id, b.job_id) == (mine, other)
    assert a.attempt == b.attempt == 1

    assert await store.hand_back([(a.id, a.attempt)]) == 1

    handed = await task_row(engine, mine)
    assert (handed.status, handed.attempt, handed.tries) == ("queued", 1, 0)
    kept = await task_row(engine, other)
    assert (kept.status, kept.attempt, kept.lease_owner) == ("running", 1, "staying")
    assert await history(engine, mine) == [(1, "interrupted")]
    assert await history(engine, other) == [(1, "running")]
    (interrupted,) = await engine.get_attempts(mine, "main")
    assert interrupted["finished_at"] is not None

    # the task handed back is claimed again at once, by anyone
    (again,) = await store.claim(worker="next", limit=1, lease_seconds=60)
    assert (again.id, again.attempt) == (a.id, 2)


async def test_a_late_hand_back_leaves_a_newer_or_finished_attempt_alone(engine: Engine) -> None:
    """A hand-back that comes after the task moved on (its lease lost and the task claimed
    again, or its attempt finished) changes nothing: not the task, not its attempt rows."""
    store = store_of(engine)
    job_id = await submit(engine, NEVER_CALLED)
    (first,) = await store.claim(worker="stalled", limit=1, lease_seconds=1)
    started = (await engine.get_job(job_id))["started_at"]
    assert started is not None
    await asyncio.sleep(0.01)
    reaped = await store.reap(max_rescues=engine.config.max_rescues, now=time.time() + 5)
    assert reaped.requeued == 1
    (second,) = await store.claim(worker="fresh", limit=1, lease_seconds=60)
    assert (second.id, second.attempt) == (first.id, 2)
    # a job started once: a later attempt does not move its start
    assert (await engine.get_job(job_id))["started_at"] == started
    lost, running = await engine.get_attempts(job_id, "main")
    assert (lost["status"], lost["error"]["type"]) == ("lost", "lost")
    assert lost["finished_at"] is not None and running["finished_at"] is None

    assert await store.hand_back([(first.id, first.attempt)]) == 0
    row = await task_row(engine, job_id)
    assert (row.status, row.attempt, row.lease_owner) == ("running", 2, "fresh")
    assert await history(engine, job_id) == [(1, "lost"), (2, "running")]

    assert await store.complete(success(second.id, job_id, second.attempt)) is True
    assert await store.hand_back([(second.id, second.attempt)]) == 0
    row = await task_row(engine, job_id)
    assert (row.status, row.attempt, row.tries) == ("succeeded", 2, 1)
    assert await history(engine, job_id) == [(1, "lost"), (2, "succeeded")]
    assert (await engine.get_job(job_id))["status"] == "succeeded"


# --- leases -------------------------------------------------------------------------------------


async def test_heartbeat_extends_only_its_own_leases_and_a_silent_worker_loses_them(
    engine: Engine,
) -> None:
    """The heartbeat keeps the tasks it names alive; a task it does not name, or one that
    another worker took over, still goes back to the queue when its lease runs out; and a
    renewed task whose worker then falls silent is rescued once the renewed lease expires."""
    store = store_of(engine)
    max_rescues = engine.config.max_rescues
    renewed_job = await submit(engine, NEVER_CALLED)
    forgotten_job = await submit(engine, NEVER_CALLED)
    renewed, forgotten = await store.claim(worker="w", limit=2, lease_seconds=1)
    assert (renewed.job_id, forgotten.job_id) == (renewed_job, forgotten_job)

    assert await store.heartbeat(worker="w", task_ids=[renewed.id], lease_seconds=60) == 1
    reaped = await store.reap(max_rescues=max_rescues, now=time.time() + 5)
    assert reaped.requeued == 1
    assert (await task_row(engine, renewed_job)).status == "running"
    assert (await task_row(engine, forgotten_job)).status == "queued"

    # the forgotten task now runs for another worker: the old owner's heartbeat is refused
    (taken,) = await store.claim(worker="other", limit=1, lease_seconds=1)
    assert taken.id == forgotten.id
    assert await store.heartbeat(worker="w", task_ids=[forgotten.id], lease_seconds=60) == 0
    reaped = await store.reap(max_rescues=max_rescues, now=time.time() + 5)
    assert reaped.requeued == 1
    assert (await task_row(engine, forgotten_job)).status == "queued"

    # the renewed task: its worker stopped renewing, so it is rescued after the new lease
    assert (await task_row(engine, renewed_job)).status == "running"
    reaped = await store.reap(max_rescues=max_rescues, now=time.time() + 120)
    assert reaped.requeued == 1
    assert await history(engine, renewed_job) == [(1, "lost")]


# --- jobs and claims ----------------------------------------------------------------------------


async def test_a_claim_starts_only_the_jobs_of_the_tasks_it_took(engine: Engine) -> None:
    store = store_of(engine)
    taken = await submit(engine, NEVER_CALLED)
    waiting = await submit(engine, NEVER_CALLED)
    before = time.time()
    (claimed,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert claimed.job_id == taken
    job = await engine.get_job(taken)
    assert job["status"] == "running" and job["started_at"] is not None
    row = await task_row(engine, taken)
    assert row.started_at >= before - 0.001
    other = await engine.get_job(waiting)
    assert (other["status"], other["started_at"]) == ("queued", None)


async def test_running_tasks_never_take_the_place_of_a_queued_one_in_a_claim(
    engine: Engine,
) -> None:
    """Tasks already running came due before any new one, but only queued tasks count toward
    a claim's limit: long calls in flight never starve the queue behind them."""
    store = store_of(engine)
    running = []
    for _ in range(3):
        job_id = await submit(engine, NEVER_CALLED)
        (claimed,) = await store.claim(worker="busy", limit=1, lease_seconds=60)
        assert claimed.job_id == job_id
        running.append(job_id)
    fresh = await submit(engine, NEVER_CALLED)
    (claimed,) = await store.claim(worker="idle", limit=1, lease_seconds=60)
    assert claimed.job_id == fresh
    for job_id in running:
        assert await history(engine, job_id) == [(1, "running")]


async def test_a_claim_restricted_to_some_jobs_takes_only_their_tasks(engine: Engine) -> None:
    """``jobqueue run --db`` claims only its own job, even with other jobs due before it."""
    store = store_of(engine)
    other = await submit(engine, NEVER_CALLED)
    mine = await submit(engine, NEVER_CALLED)
    claimed = await store.claim(worker="w", limit=2, lease_seconds=60, job_ids=[mine])
    assert [t.job_id for t in claimed] == [mine]
    assert (await engine.get_job(other))["status"] == "queued"
    assert (await task_row(engine, other)).status == "queued"


async def test_claims_take_the_task_due_first_not_the_one_submitted_first(
    engine: Engine,
) -> None:
    """Claim order is priority, then due time, then id (docs/operations.md): a job scheduled
    a moment ahead waits behind a job submitted after it but due before it."""
    store = store_of(engine)
    later = datetime.now(UTC) + timedelta(seconds=0.3)
    scheduled = await submit(engine, NEVER_CALLED | {"scheduled_at": later.isoformat()})
    immediate = await submit(engine, NEVER_CALLED)
    await asyncio.sleep(0.4)  # both are due now
    (first,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    (second,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert (first.job_id, second.job_id) == (immediate, scheduled)


# --- a batch of outcomes ------------------------------------------------------------------------


async def test_a_batch_refuses_the_outcome_of_a_task_canceled_while_it_ran(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two outcomes in one group commit: the one whose job was canceled meanwhile (same attempt
    number, but the task no longer runs) is refused; the other is recorded."""
    store = store_of(engine)
    canceled = await submit(engine, NEVER_CALLED)
    alive = await submit(engine, NEVER_CALLED)
    a, b = await store.claim(worker="w", limit=2, lease_seconds=60)
    assert (a.job_id, b.job_id) == (canceled, alive)
    assert await engine.cancel(canceled) == "canceled"

    batches: list[int] = []
    apply_many = CompleteOp.apply_many.__func__  # type: ignore[attr-defined]

    async def counting(cls: type[CompleteOp], conn: Any, ops: Any) -> list[Any]:
        batches.append(len(ops))
        return await apply_many(cls, conn, ops)

    monkeypatch.setattr(CompleteOp, "apply_many", classmethod(counting))
    applied = await asyncio.gather(
        store.complete(success(a.id, canceled, a.attempt)),
        store.complete(success(b.id, alive, b.attempt)),
    )
    assert batches == [2], "both outcomes must reach the database in one group commit"
    assert applied == [False, True]
    row = await task_row(engine, canceled)
    assert (row.status, row.tries, row.response_body) == ("canceled", 0, None)
    assert (await engine.get_job(canceled))["status"] == "canceled"
    assert await history(engine, canceled) == [(1, "canceled")]
    assert (await engine.get_job(alive))["status"] == "succeeded"


# --- the reaper ---------------------------------------------------------------------------------


async def test_reaper_log_lines_name_the_task(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator reading a lost-lease or an expiry line learns which task of the job it was."""
    store = store_of(engine)
    job_id = await submit(engine, NEVER_CALLED)
    await store.claim(worker="gone", limit=1, lease_seconds=1)
    with caplog.at_level(logging.INFO, logger="jobqueue"):
        await engine.reap(now=time.time() + 60)
    (line,) = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
    fields = (line.levelno, getattr(line, "task", None), getattr(line, "error_type", None))
    assert fields == (logging.WARNING, "main", "lost")
    assert "task main attempt 1" in line.getMessage()
