"""Per-host limits against a real local target: the concurrency cap holds, and a Retry-After
from the host holds back every task bound for it, without spending their attempts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine import Engine, EngineConfig
from engine.store import Outcome
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.store import store_of
from tests.support.waiting import job_ends, until


@pytest.fixture
def config(db_url: str) -> EngineConfig:
    return make_config(db_url, concurrency=8, host_limits="127.0.0.1=2")


async def submit(engine: Engine, url: str, **fields: Any) -> str:
    document = {"url": url, **fields}
    return (await engine.submit(parse_job_document(document), single_call=True)).job_id


async def test_concurrent_calls_to_a_host_stay_under_its_cap(
    running: Engine, target_server: TargetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_of(running)
    deferrals = 0
    defer = store.defer

    async def counting_defer(outcome: Outcome) -> bool:
        nonlocal deferrals
        deferrals += 1
        return await defer(outcome)

    monkeypatch.setattr(store, "defer", counting_defer)
    ids = [await submit(running, target_server.url(f"/slow?seconds=0.2&n={i}")) for i in range(8)]
    jobs = await asyncio.gather(*(job_ends(running, job_id, timeout=30) for job_id in ids))
    assert [job["status"] for job in jobs] == ["succeeded"] * 8
    assert target_server.max_in_flight == 2  # the worker had 8 slots; the host allows 2
    assert len(target_server.requests) == 8
    # the waiting tasks came back at spread-out times, not in a tight loop: 6 had to wait for
    # 3 rounds of 2 calls of 0.2 s, a few hand-backs each
    assert 0 < deferrals <= 60
    for job_id in ids:  # waiting for the host spent no attempt and left no attempt row
        assert (await running.get_job(job_id))["attempt"] == 1
        attempts = await running.get_attempts(job_id, "main")
        assert [a["status"] for a in attempts] == ["succeeded"]


async def test_retry_after_pauses_every_task_for_the_host(
    running: Engine, target_server: TargetServer
) -> None:
    paused = await submit(
        running,
        target_server.url("/flaky/p?fail=1&retry_after=3"),
        max_attempts=2,
        backoff_seconds=0.1,
    )
    # its first attempt is recorded: the host is paused for 3 s
    await until(lambda: _error_type(running, paused, "http_status"), timeout=10)

    others = [await submit(running, target_server.url(f"/json?n={i}")) for i in range(3)]
    for job_id in others:
        await until(lambda job_id=job_id: _error_type(running, job_id, "host_busy"), timeout=10)
    assert [r.path for r in target_server.requests] == ["/flaky/p"]  # none of them was sent

    ended = [await job_ends(running, job_id, timeout=30) for job_id in [paused, *others]]
    assert [job["status"] for job in ended] == ["succeeded"] * 4
    assert ended[0]["attempt"] == 2  # the task that got the 503 retried per its policy
    for job_id in others:
        assert (await running.get_job(job_id))["attempt"] == 1
        assert len(await running.get_attempts(job_id, "main")) == 1


async def _error_type(engine: Engine, job_id: str, kind: str) -> bool:
    error = (await engine.get_result(job_id))["tasks"]["main"]["error"]
    return bool(error) and error.get("type") == kind
