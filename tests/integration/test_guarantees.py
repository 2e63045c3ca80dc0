"""The delivery guarantees of docs/operations.md, each pinned by a test that fails without it.

- the attempt fence: an outcome of an attempt that is no longer the task's running attempt is
  refused, even while a newer attempt of the same task runs;
- the heartbeat: a call that outlives its lease is not rescued while the worker renews it;
- surviving the database: transient errors in the claim, the heartbeat and the outcome write
  are logged and waited out, while an error that is not transient stops the worker visibly.

Real SQLite file and real local HTTP server; ``tests/pg/test_guarantees_on_postgres.py`` runs
the same functions on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from engine import Engine, Unavailable, WorkerFailed
from engine.runtime.backoff import is_transient
from engine.runtime.worker import Worker
from engine.store.outcomes import CompleteOp
from engine.store.tables import tasks
from engine.store.writer import WriteOp
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.store import store_of, submit, success, task_row
from tests.support.waiting import job_ends, until


async def attempt_statuses(engine: Engine, job_id: str, name: str = "main") -> list[str]:
    return [a["status"] for a in await engine.get_attempts(job_id, name)]


# --- the attempt fence --------------------------------------------------------------------------


@pytest.mark.parametrize("arrival", ["alone", "in_one_batch"])
async def test_stale_outcome_is_refused_while_the_next_attempt_runs(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, arrival: str
) -> None:
    """Attempt 1 lost its lease and attempt 2 of the same task is running when attempt 1's
    outcome arrives: the task is still ``running``, so only the attempt number can refuse it.

    ``alone``: the stale outcome is its own transaction (the fenced ``UPDATE ... RETURNING``).
    ``in_one_batch``: it shares one group commit with attempt 2's outcome (the batch path,
    which checks the fence for all outcomes in one query).
    """
    store = store_of(engine)
    job_id = await submit(engine, {"url": "http://127.0.0.1:9/never-called"})
    (first,) = await store.claim(worker="stalled", limit=1, lease_seconds=1)
    reaped = await store.reap(max_rescues=engine.config.max_rescues, now=time.time() + 5)
    assert reaped.requeued == 1
    (second,) = await store.claim(worker="fresh", limit=1, lease_seconds=60)
    assert (second.id, second.attempt) == (first.id, first.attempt + 1) == (first.id, 2)

    row = await task_row(engine, job_id)
    assert (row.status, row.attempt, row.lease_owner) == ("running", 2, "fresh")
    assert await attempt_statuses(engine, job_id) == ["lost", "running"]

    stale = success(first.id, job_id, first.attempt, {"from": "attempt 1"})
    fresh = success(second.id, job_id, second.attempt, {"from": "attempt 2"})
    if arrival == "alone":
        assert await store.complete(stale) is False
        row = await task_row(engine, job_id)
        assert (row.status, row.attempt, row.lease_owner) == ("running", 2, "fresh")
        assert row.response_body is None and row.tries == 0
        assert await attempt_statuses(engine, job_id) == ["lost", "running"]
        assert (await engine.get_job(job_id))["status"] == "running"
        assert await store.complete(fresh) is True
    else:
        batches: list[int] = []
        apply_many = CompleteOp.apply_many.__func__  # type: ignore[attr-defined]

        async def counting(cls: type[CompleteOp], conn: Any, ops: Any) -> list[Any]:
            batches.append(len(ops))
            return await apply_many(cls, conn, ops)

        monkeypatch.setattr(CompleteOp, "apply_many", classmethod(counting))
        applied = await asyncio.gather(store.complete(stale), store.complete(fresh))
        assert batches == [2], "both outcomes must reach the database in one group commit"
        assert applied == [False, True]

    result = await engine.get_result(job_id)
    assert result["status"] == "succeeded"
    assert result["response_body"] == {"from": "attempt 2"}
    row = await task_row(engine, job_id)
    assert (row.status, row.attempt, row.tries) == ("succeeded", 2, 1)
    tried = await engine.get_attempts(job_id, "main")
    assert [(a["attempt"], a["status"]) for a in tried] == [(1, "lost"), (2, "succeeded")]
    assert tried[0]["error"]["type"] == "lost" and tried[0]["response_status"] is None
    assert tried[0]["worker"] == "stalled" and tried[1]["worker"] == "fresh"


# --- the heartbeat ------------------------------------------------------------------------------


async def _one_call_longer_than_its_lease(
    engine: Engine, target_server: TargetServer
) -> tuple[str, list[str], Any]:
    """Run one call of ~2 s under a 0.6 s lease with the reaper sweeping every 0.1 s."""
    target_server.reset()
    engine.start_worker()
    try:
        job_id = await submit(engine, {"url": target_server.url("/slow?seconds=2")})
        await job_ends(engine, job_id, timeout=20)
    finally:
        await engine.stop_workers()
    await target_server.wait_idle(timeout=5)
    return job_id, await attempt_statuses(engine, job_id), await task_row(engine, job_id)


async def test_heartbeat_keeps_a_call_longer_than_its_lease_from_being_rescued(
    db_url: str, target_server: TargetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = await Engine.open(
        make_config(db_url, lease_seconds=0.6, reaper_interval=0.1, max_rescues=1)
    )
    try:
        # With the heartbeat: the lease is renewed every 0.2 s, the reaper finds nothing.
        job_id, tried, row = await _one_call_longer_than_its_lease(engine, target_server)
        assert tried == ["succeeded"]
        assert (row.status, row.attempt, row.rescues) == ("succeeded", 1, 0)
        assert (await engine.get_job(job_id))["status"] == "succeeded"
        assert len(target_server.requests) == 1

        # The same scenario with the heartbeat switched off: the control that shows the
        # scenario does outlive its lease, so the run above passed because of the heartbeat.
        async def no_renewal(self: Worker) -> None:
            return None

        monkeypatch.setattr(Worker, "_renew_leases", no_renewal)
        job_id, tried, row = await _one_call_longer_than_its_lease(engine, target_server)
        assert tried == ["lost", "lost"]  # lost, rescued once, lost again: max_rescues=1
        assert (row.status, row.rescues) == ("failed", 2)
        assert row.error["type"] == "lost"
        assert (await engine.get_job(job_id))["status"] == "failed"
        assert len(target_server.requests) == 2
    finally:
        await engine.close()


async def test_a_lease_lost_and_won_back_by_the_same_worker_keeps_the_new_attempt_alive(
    db_url: str, target_server: TargetServer
) -> None:
    """Attempt 1's lease is lost while its call runs (a stall, a database outage longer than
    the lease), and the same worker claims the task again. The worker then runs two attempts of
    one task: the stale call must be interrupted, and its end must not make the worker forget
    attempt 2 (which would stop its lease renewals and its cancel checks: attempt 2 would be
    lost too, then attempt 3, until the task fails although the worker is healthy).

    Attempt 1 takes 1 s, later attempts 3 s (longer than the 0.6 s lease, so only the heartbeat
    keeps them). The cancel check is slowed so that the claim of attempt 2 surely comes before
    it (in production it usually does: the sweep's commit wakes the claim loop at once)."""
    engine = await Engine.open(
        make_config(db_url, lease_seconds=0.6, reaper_interval=0.1, cancel_check_interval=30.0)
    )
    try:
        engine.start_worker()
        job_id = await submit(engine, {"url": target_server.url("/slow?seconds=1&later_seconds=3")})
        await target_server.wait_until(lambda: target_server.state.in_flight == 1)
        reaped = await engine.reap(now=time.time() + 60)  # attempt 1's lease is gone
        assert reaped.requeued == 1

        assert (await job_ends(engine, job_id, timeout=20))["status"] == "succeeded"
        tried = await engine.get_attempts(job_id, "main")
        assert [(a["attempt"], a["status"]) for a in tried] == [(1, "lost"), (2, "succeeded")]
        row = await task_row(engine, job_id)
        assert (row.attempt, row.rescues, row.tries) == (2, 1, 1)
        await target_server.wait_idle(timeout=5)
        calls = {r.header("X-JobQueue-Attempt"): r.outcome for r in target_server.requests}
        assert calls == {"1": "cancelled", "2": "ok"}, "the stale call is interrupted"
    finally:
        await engine.close()


# --- surviving the database ---------------------------------------------------------------------


class FailOnce:
    """Wraps a Store method: its first call raises ``exc`` (before the write, or after it with
    ``after=True``: the write committed but its acknowledgement was lost); the rest pass."""

    def __init__(
        self, real: Callable[..., Awaitable[Any]], exc: Exception, *, after: bool = False
    ) -> None:
        self.real = real
        self.exc = exc
        self.after = after
        self.calls = 0
        self.raised = 0
        #: calls that returned an answer
        self.answered = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.raised:
            result = await self.real(*args, **kwargs)
            self.answered += 1
            return result
        self.raised += 1
        if self.after:
            await self.real(*args, **kwargs)
        raise self.exc


def _dag(target_server: TargetServer, i: int) -> dict[str, Any]:
    url = target_server.url
    return {
        "name": f"dag-{i}",
        "tasks": [
            {"name": "a", "url": url(f"/json?dag={i}&t=a")},
            {"name": "b", "url": url(f"/slow?seconds=0.3&dag={i}&t=b"), "depends_on": ["a"]},
            {"name": "c", "url": url(f"/json?dag={i}&t=c"), "depends_on": ["a"]},
            {"name": "d", "url": url(f"/json?dag={i}&t=d"), "depends_on": ["b", "c"]},
        ],
    }


async def test_transient_errors_in_claim_heartbeat_and_outcome_write_are_survived(
    db_url: str,
    target_server: TargetServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="jobqueue.worker")
    # lease 1.5 s: the heartbeat runs every 0.5 s, so the 1 s calls below always meet one
    engine = await Engine.open(make_config(db_url, lease_seconds=1.5))
    try:
        docs: list[dict[str, Any]] = [
            {"url": target_server.url(f"/json?single={i}")} for i in range(10)
        ]
        docs += [{"url": target_server.url(f"/slow?seconds=1&single={i}")} for i in range(10, 16)]
        docs += [_dag(target_server, i) for i in range(4)]
        # Queued before the worker starts: its first claim (the one that fails) has work.
        ids = [await submit(engine, doc) for doc in docs]
        assert len(ids) == 20

        store = store_of(engine)
        faults = {
            name: FailOnce(getattr(store, name), Unavailable(f"injected: {name}"))
            for name in ("claim", "heartbeat", "complete")
        }
        for name, wrapper in faults.items():
            monkeypatch.setattr(store, name, wrapper)

        worker = engine.start_worker()
        for job_id in ids:
            assert (await job_ends(engine, job_id, timeout=30))["status"] == "succeeded"

        assert {name: w.raised for name, w in faults.items()} == {
            "claim": 1,
            "heartbeat": 1,
            "complete": 1,
        }
        assert all(w.calls > 1 for w in faults.values()), "each method was called again"
        assert worker.alive and worker.failure is None
        assert engine.health() == {"workers": 1, "failed_workers": []}
        # every task ran once: a failed write is retried, it does not cost an attempt
        async with store.read() as conn:
            claims = (await conn.execute(select(tasks.c.attempt))).scalars().all()
        assert len(claims) == 16 + 4 * 4 and set(claims) == {1}

        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        said = "\n".join(r.getMessage() for r in warnings)
        assert "claiming tasks failed (injected: claim)" in said
        assert "renewing leases failed (injected: heartbeat)" in said
        assert "failed (injected: complete)" in said and "recording job" in said
        assert all(r.name == "jobqueue.worker" for r in warnings)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        await engine.close()


async def test_an_outcome_committed_but_not_acknowledged_is_recorded_once(
    db_url: str,
    target_server: TargetServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The outcome write commits, then the connection fails before the answer: the worker
    writes it again, and the fence makes the repeat a no-op (no second try counted, the
    downstream task it claimed in the first transaction still starts, and only once).

    The cancel check is slowed down: it would otherwise often see the task ended and stop the
    repeat before it is made (also correct, but then the fence is not what is tested)."""
    caplog.set_level(logging.WARNING, logger="jobqueue.worker")
    # reaper_interval 30 s: a downstream task claimed and then dropped would not end in time
    engine = await Engine.open(make_config(db_url, cancel_check_interval=30.0))
    try:
        store = store_of(engine)
        lost_ack = FailOnce(store.complete, Unavailable("injected: ack lost"), after=True)
        monkeypatch.setattr(store, "complete", lost_ack)
        engine.start_worker()
        job_id = await submit(
            engine,
            {
                "tasks": [
                    {"name": "a", "url": target_server.url("/json?t=a")},
                    {"name": "b", "url": target_server.url("/json?t=b"), "depends_on": ["a"]},
                ]
            },
        )
        assert (await job_ends(engine, job_id, timeout=10))["status"] == "succeeded"

        async def repeated() -> bool:  # the repeat comes after a backoff, maybe after the end
            return lost_ack.answered == 2  # a again, and b

        await until(repeated, timeout=5)
        assert (lost_ack.raised, lost_ack.calls) == (1, 3)
        for name in ("a", "b"):
            row = await task_row(engine, job_id, name)
            assert (row.status, row.attempt, row.tries) == ("succeeded", 1, 1)
            assert await attempt_statuses(engine, job_id, name) == ["succeeded"]
        assert sorted(r.raw_query for r in target_server.requests) == ["t=a", "t=b"]
        assert (await engine.get_job(job_id))["status"] == "succeeded"
        said = "\n".join(r.getMessage() for r in caplog.records)
        assert "failed (injected: ack lost)" in said
        assert "task a attempt 1: outcome succeeded refused" in said
    finally:
        await engine.close()


class _Raises(WriteOp[None]):
    batchable = False

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def apply(self, conn: AsyncConnection) -> None:
        raise self.exc


class _DriverError(Exception):
    """What asyncpg raises for a server error: a message and a SQLSTATE."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "transient"),
    [
        ("57P03", True),  # the database system is shutting down / starting up
        ("57P01", True),  # terminating connection due to administrator command
        ("08006", True),  # connection failure
        ("42P01", False),  # undefined table: a bug, not an outage
    ],
)
async def test_errors_of_a_restarting_postgres_server_are_transient(
    engine: Engine, sqlstate: str, transient: bool
) -> None:
    """SQLAlchemy wraps these asyncpg errors in its generic ``DBAPIError`` (not
    ``OperationalError``); the store must still call them an outage (``Unavailable``), or a
    PostgreSQL restart stops the worker (tests/pg/test_postgres_restart.py shows it for real)."""
    error = DBAPIError("SELECT 1", None, _DriverError("the server went away", sqlstate))
    with pytest.raises(Unavailable if transient else DBAPIError) as raised:
        await store_of(engine).write(_Raises(error))
    assert is_transient(raised.value) is transient


async def test_a_non_transient_error_stops_the_worker_and_says_so(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def broken_claim(**_: Any) -> list[Any]:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug in claim")

    monkeypatch.setattr(store_of(engine), "claim", broken_claim)

    worker = engine.start_worker()

    async def failed() -> list[str]:
        return list(engine.health()["failed_workers"])

    (failure,) = await until(failed, timeout=10)
    assert failure.startswith("claim loop: ") and "RuntimeError('a bug in claim')" in failure
    assert worker.failure == failure and not worker.alive
    assert calls == 1, "a bug is not retried like a database outage"
    assert any(r.levelno == logging.ERROR and "stops" in r.getMessage() for r in caplog.records), (
        "the failure is logged as an error"
    )

    with pytest.raises(WorkerFailed, match="a bug in claim"):
        await asyncio.wait_for(engine.run_worker(), timeout=10)


async def test_a_failed_worker_fails_healthz_and_gets_no_new_job(
    client: httpx.AsyncClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_claim = store_of(engine).claim
    claims = 0

    async def broken_claim(**kwargs: Any) -> list[Any]:
        # The first claim works and finds the queue empty: the worker would take new jobs
        # directly from then on. The second one hits the bug.
        nonlocal claims
        claims += 1
        if claims == 1:
            return await real_claim(**kwargs)
        raise RuntimeError("a bug in claim")

    monkeypatch.setattr(store_of(engine), "claim", broken_claim)
    engine.start_worker()

    async def sick() -> httpx.Response | None:
        response = await client.get("/healthz")
        return response if response.status_code == 503 else None

    answer = (await until(sick, timeout=10)).json()
    assert answer["status"] == "unhealthy"
    assert "a bug in claim" in answer["failed_workers"][0]
    created = await client.post("/api/v1/jobs", json={"url": "http://127.0.0.1:9/never"})
    assert created.status_code == 201
    job = (await client.get(f"/api/v1/jobs/{created.json()['job_id']}")).json()
    assert (job["status"], job["tasks"][0]["status"]) == ("queued", "queued"), (
        "a new job is not dispatched to a worker that stopped"
    )
