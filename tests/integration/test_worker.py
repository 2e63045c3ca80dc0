"""The worker against a real SQLite file and a real local HTTP server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine import Engine
from engine.states import AttemptStatus, TaskStatus
from engine.store import Outcome
from engine.store.tables import attempts, jobs, tasks
from engine.store.writer import WriteOp
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.store import store_of
from tests.support.waiting import job_ends, until


async def submit(engine: Engine, doc: dict[str, Any]) -> str:
    return (await engine.submit(parse_job_document(doc), single_call="tasks" not in doc)).job_id


async def test_runs_concurrency_calls_at_once(running: Engine, target_server: TargetServer) -> None:
    ids = [
        await submit(running, {"url": target_server.url(f"/slow?seconds=0.3&n={i}")})
        for i in range(12)
    ]
    for job_id in ids:
        assert (await job_ends(running, job_id))["status"] == "succeeded"
    assert target_server.max_in_flight == running.config.concurrency == 4


async def test_retries_until_success_and_records_every_attempt(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(
        running,
        {
            "url": target_server.url("/flaky/r1?fail=2"),
            "max_attempts": 4,
            "backoff_strategy": "fixed",
            "backoff_seconds": 0.01,
        },
    )
    assert (await job_ends(running, job_id))["status"] == "succeeded"
    tried = await running.get_attempts(job_id, "main")
    assert [a["status"] for a in tried] == ["failed", "failed", "succeeded"]
    assert [a["response_status"] for a in tried] == [503, 503, 200]
    assert tried[0]["error"]["type"] == "http_status"
    assert all(a["duration_ms"] is not None for a in tried)


async def test_gives_up_after_max_attempts(running: Engine, target_server: TargetServer) -> None:
    job_id = await submit(
        running,
        {"url": target_server.url("/status/500"), "max_attempts": 2, "backoff_seconds": 0.01},
    )
    assert (await job_ends(running, job_id))["status"] == "failed"
    result = await running.get_result(job_id)
    assert result["error"]["type"] == "http_status" and result["response_status"] == 500
    assert len(await running.get_attempts(job_id, "main")) == 2


async def test_retry_on_status_decides_what_retries(
    running: Engine, target_server: TargetServer
) -> None:
    default = await submit(
        running,
        {"url": target_server.url("/status/404"), "max_attempts": 3, "backoff_seconds": 0.01},
    )
    custom = await submit(
        running,
        {
            "url": target_server.url("/status/404?x=1"),
            "max_attempts": 3,
            "backoff_seconds": 0.01,
            "retry_on_status": [404],
        },
    )
    await job_ends(running, default)
    await job_ends(running, custom)
    assert len(await running.get_attempts(default, "main")) == 1
    assert len(await running.get_attempts(custom, "main")) == 3


async def test_network_errors_and_timeouts_retry(running: Engine) -> None:
    job_id = await submit(
        running,
        {"url": "http://127.0.0.1:9/refused", "max_attempts": 2, "backoff_seconds": 0.01},
    )
    await job_ends(running, job_id)
    tried = await running.get_attempts(job_id, "main")
    assert [a["error"]["type"] for a in tried] == ["network", "network"]


async def test_timeout_is_an_attempt_error(running: Engine, target_server: TargetServer) -> None:
    job_id = await submit(
        running, {"url": target_server.url("/slow?seconds=5"), "timeout_sec": 0.2}
    )
    await job_ends(running, job_id)
    (only,) = await running.get_attempts(job_id, "main")
    assert only["error"]["type"] == "timeout"


async def test_retry_after_is_honoured(running: Engine, target_server: TargetServer) -> None:
    job_id = await submit(
        running,
        {
            "url": target_server.url("/flaky/ra?fail=1&retry_after=1"),
            "max_attempts": 2,
            "backoff_strategy": "fixed",
            "backoff_seconds": 0.01,
        },
    )
    assert (await job_ends(running, job_id))["status"] == "succeeded"
    async with store_of(running).read() as conn:
        rows = (
            await conn.execute(
                select(attempts.c.started_at, attempts.c.finished_at)
                .where(attempts.c.job_id == job_id)
                .order_by(attempts.c.attempt)
            )
        ).all()
    gap = rows[1].started_at - rows[0].finished_at
    assert gap >= 0.95, "the second attempt must wait for Retry-After, not the 10 ms backoff"


async def test_scheduled_at_in_the_future_is_not_claimed(engine: Engine) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    job_id = await submit(engine, {"url": "http://127.0.0.1:9/", "scheduled_at": later})
    claimed = await store_of(engine).claim(worker="t", limit=10, lease_seconds=5)
    assert claimed == []
    assert (await engine.get_job(job_id))["status"] == "queued"
    assert (await engine.get_job(job_id))["scheduled_at"].startswith(later[:16])


async def test_higher_priority_runs_first(db_url: str, target_server: TargetServer) -> None:
    engine = await Engine.open(make_config(db_url, concurrency=1))
    try:
        low = await submit(engine, {"url": target_server.url("/json?p=low"), "priority": 1})
        high = await submit(engine, {"url": target_server.url("/json?p=high"), "priority": 9})
        engine.start_worker()
        await job_ends(engine, low)
        await job_ends(engine, high)
        order = [r.raw_query for r in target_server.requests]
        assert order == ["p=high", "p=low"]
    finally:
        await engine.close()


async def test_cancel_interrupts_a_running_call(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(running, {"url": target_server.url("/slow?seconds=30")})
    await target_server.wait_until(lambda: target_server.state.in_flight == 1)
    assert await running.cancel(job_id) == "canceled"
    await target_server.wait_idle(timeout=3)
    job = await running.get_job(job_id)
    assert job["status"] == "canceled" and job["tasks"][0]["status"] == "canceled"
    (only,) = await running.get_attempts(job_id, "main")
    assert only["status"] == "canceled"
    from engine import Conflict

    with pytest.raises(Conflict):
        await running.cancel(job_id)


async def test_cancel_from_another_process_is_seen_by_the_worker(
    db_url: str, target_server: TargetServer
) -> None:
    """A second Engine on the same file stands in for another API process."""
    worker_side = await Engine.open(make_config(db_url))
    api_side = await Engine.open(make_config(db_url))
    try:
        worker_side.start_worker()
        job_id = await submit(api_side, {"url": target_server.url("/slow?seconds=30")})
        await target_server.wait_until(lambda: target_server.state.in_flight == 1)
        await api_side.cancel(job_id)
        await target_server.wait_idle(timeout=3)
    finally:
        await worker_side.close()
        await api_side.close()


async def test_finished_job_is_deleted_after_its_ttl(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(running, {"url": target_server.url("/json"), "ttl_seconds": 0.2})
    await job_ends(running, job_id)
    from engine import NotFound

    async def gone() -> bool:
        try:
            await running.get_job(job_id)
        except NotFound:
            return True
        return False

    await until(gone, timeout=5)
    await running.reap()
    async with store_of(running).read() as conn:
        left = await conn.execute(select(func.count()).select_from(tasks))
        assert left.scalar_one() == 0
        assert (await conn.execute(select(func.count()).select_from(jobs))).scalar_one() == 0


async def test_expired_lease_requeues_and_the_late_writer_is_fenced(
    engine: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(engine, {"url": target_server.url("/json")})
    (ghost,) = await store_of(engine).claim(worker="dead", limit=1, lease_seconds=1)
    await engine.reap(now=time.time() + 5)
    job = await engine.get_job(job_id)
    assert job["tasks"][0]["status"] == "queued"
    late = Outcome(
        task_id=ghost.id,
        job_id=job_id,
        attempt=ghost.attempt,
        solo=True,
        status=TaskStatus.FAILED,
        attempt_status=AttemptStatus.FAILED,
        finished_at=time.time(),
        error={"type": "late"},
    )
    engine.start_worker()
    assert (await job_ends(engine, job_id))["status"] == "succeeded"
    assert await store_of(engine).complete(late) is False
    tried = await engine.get_attempts(job_id, "main")
    assert [a["status"] for a in tried] == ["lost", "succeeded"]
    assert (await engine.get_job(job_id))["status"] == "succeeded"


async def test_too_many_rescues_fail_the_task(db_url: str) -> None:
    engine = await Engine.open(make_config(db_url, max_rescues=1))
    try:
        job_id = await submit(engine, {"url": "http://127.0.0.1:9/"})
        for _ in range(2):
            await store_of(engine).claim(worker="dead", limit=1, lease_seconds=1)
            await engine.reap(now=time.time() + 5)
        job = await engine.get_job(job_id)
        assert job["status"] == "failed"
        result = await engine.get_result(job_id)
        assert result["error"]["type"] == "lost"
        assert [a["status"] for a in await engine.get_attempts(job_id, "main")] == ["lost", "lost"]
    finally:
        await engine.close()


async def test_shutdown_hands_unfinished_calls_back_without_spending_an_attempt(
    db_url: str, target_server: TargetServer
) -> None:
    engine = await Engine.open(make_config(db_url, shutdown_grace=0.2))
    try:
        job_id = await submit(engine, {"url": target_server.url("/slow?seconds=30")})
        worker = engine.start_worker()
        await target_server.wait_until(lambda: target_server.state.in_flight == 1)
        worker.stop()
        await engine.stop_workers()
        job = await engine.get_job(job_id)
        assert job["tasks"][0]["status"] == "queued"
        (only,) = await engine.get_attempts(job_id, "main")
        assert only["status"] == "interrupted"
        async with store_of(engine).read() as conn:
            tries = await conn.execute(select(tasks.c.tries).where(tasks.c.job_id == job_id))
            assert tries.scalar_one() == 0
    finally:
        await engine.close()


async def test_restart_with_jobs_queued_loses_nothing(
    db_url: str, target_server: TargetServer
) -> None:
    first = await Engine.open(make_config(db_url))
    ids = [await submit(first, {"url": target_server.url(f"/json?i={i}")}) for i in range(20)]
    await first.close()
    second = await Engine.open(make_config(db_url))
    try:
        await second.run_worker(burst=True)
        for job_id in ids:
            assert (await second.get_job(job_id))["status"] == "succeeded"
        assert len(target_server.requests) == 20
    finally:
        await second.close()


async def test_submission_wakes_the_worker_without_waiting_for_the_poll(
    db_url: str, target_server: TargetServer
) -> None:
    engine = await Engine.open(make_config(db_url, poll_interval=60.0))
    try:
        engine.start_worker()
        job_id = await submit(engine, {"url": target_server.url("/json")})
        assert (await job_ends(engine, job_id, timeout=10))["status"] == "succeeded"
    finally:
        await engine.close()


@pytest.mark.parametrize(("setting", "pragma"), [("FULL", 2), ("NORMAL", 1)])
async def test_sqlite_synchronous_setting_applies(
    tmp_path: Path, setting: str, pragma: int
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sync.db'}"
    engine = await Engine.open(make_config(url, sqlite_synchronous=setting))
    try:
        found = await store_of(engine).write(_Pragmas())
        assert found == {"synchronous": pragma, "journal_mode": "wal", "busy_timeout": 30000}
    finally:
        await engine.close()


async def test_commit_in_another_process_wakes_the_worker(
    db_url: str, target_server: TargetServer
) -> None:
    """Two engines on one file stand in for two processes; the poll alone would take 60 s."""
    worker_side = await Engine.open(make_config(db_url, poll_interval=60.0))
    api_side = await Engine.open(make_config(db_url))
    try:
        worker_side.start_worker()
        first = await submit(worker_side, {"url": target_server.url("/json?first=1")})
        await job_ends(worker_side, first)  # the worker has run and gone back to waiting
        job_id = await submit(api_side, {"url": target_server.url("/json")})
        assert (await job_ends(api_side, job_id, timeout=10))["status"] == "succeeded"
    finally:
        await worker_side.close()
        await api_side.close()


async def test_burst_of_submissions_runs_each_task_once(
    running: Engine, target_server: TargetServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Concurrent submissions share commits; some go straight to the idle worker (direct
    dispatch), others through the queue. Every job runs exactly once, no batch falls apart."""
    warm = await submit(running, {"url": target_server.url("/json?warm=1")})
    await job_ends(running, warm)  # the worker is idle with nothing queued: it takes directly
    docs = [{"url": target_server.url(f"/json?i={i}")} for i in range(120)]
    docs += [
        {"tasks": [{"name": "a", "url": target_server.url(f"/json?d={i}")}]} for i in range(30)
    ]
    ids = await asyncio.gather(*(submit(running, d) for d in docs))
    for job_id in ids:
        assert (await job_ends(running, job_id))["status"] == "succeeded"
    async with store_of(running).read() as conn:
        attempts_per_task = (await conn.execute(select(tasks.c.attempt))).scalars().all()
    assert set(attempts_per_task) == {1}
    assert len(target_server.requests) == 151
    assert not [r for r in caplog.records if "batch of" in r.getMessage()]


async def test_a_claim_takes_at_most_its_limit_in_priority_order(engine: Engine) -> None:
    ids = [
        await submit(engine, {"url": f"http://127.0.0.1:9/{i}", "priority": i % 5})
        for i in range(40)
    ]
    claimed = await store_of(engine).claim(worker="w", limit=3, lease_seconds=5)
    assert len(claimed) == 3
    assert {c.job_id for c in claimed} <= set(ids)
    async with store_of(engine).read() as conn:
        running = await conn.execute(
            select(func.count()).select_from(tasks).where(tasks.c.status == "running")
        )
        assert running.scalar_one() == 3
        priorities = await conn.execute(
            select(jobs.c.priority).where(jobs.c.id.in_([c.job_id for c in claimed]))
        )
        assert set(priorities.scalars()) == {4}


class _Pragmas(WriteOp[dict[str, object]]):
    """Read the PRAGMAs on the writer's own connection (where ``synchronous`` matters)."""

    async def apply(self, conn: AsyncConnection) -> dict[str, object]:
        names = ("synchronous", "journal_mode", "busy_timeout")
        return {n: (await conn.execute(text(f"PRAGMA {n}"))).scalar_one() for n in names}
