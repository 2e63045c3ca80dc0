"""A PostgreSQL restart in the middle of a run: the worker rides it out, nothing is lost.

The server is a private cluster (``tests/support/pg_cluster.py``), so restarting it disturbs no
other test. An engine with a running worker (concurrency 8) works through 200 single-call jobs;
when some have finished and some not, the cluster restarts (``pg_ctl restart -m fast``: every
connection is cut). Without a restart of the worker, every job must end ``succeeded``, each task
with exactly one successful attempt and at most a few extra ``lost`` ones (a claim committed
just before the cut whose answer never arrived comes back through lease expiry).

What the run looked like (how long the worker took to resume, which warnings it logged) is
printed, not asserted: see ``-s`` or the captured output.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import Engine
from engine.store.tables import attempts, tasks
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.pg_cluster import ClusterUnavailable, PrivateCluster
from tests.support.store import store_of
from tests.support.waiting import job_ends, until

JOBS = 200
CONCURRENCY = 8


def private_cluster() -> PrivateCluster:
    try:
        return PrivateCluster.create()
    except ClusterUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"a private PostgreSQL cluster is needed in CI: {exc}")
        pytest.skip(f"no private PostgreSQL cluster: {exc}")


async def succeeded_count(engine: Engine) -> int:
    async with store_of(engine).read() as conn:
        query = select(func.count()).select_from(tasks).where(tasks.c.status == "succeeded")
        return int((await conn.execute(query)).scalar_one())


@pytest.mark.slow
async def test_worker_rides_out_a_postgres_restart(
    target_server: TargetServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobqueue")
    cluster = private_cluster()
    try:
        cluster.start()
        config = make_config(
            cluster.url, concurrency=CONCURRENCY, lease_seconds=3.0, reaper_interval=0.5
        )
        engine = await Engine.open(config)
        try:
            worker = engine.start_worker()
            ids = []
            for i in range(JOBS):
                doc = {"url": target_server.url(f"/slow?seconds=0.2&i={i}")}
                ids.append((await engine.submit(parse_job_document(doc), single_call=True)).job_id)

            async def some_done() -> int:
                done = await succeeded_count(engine)
                return done if done >= 40 else 0

            done_before = await until(some_done, timeout=60, interval=0.05)
            restart_began = time.time()
            await asyncio.to_thread(cluster.restart)  # the worker keeps running meanwhile
            restart_ended = time.time()

            results = [await job_ends(engine, job_id, timeout=120) for job_id in ids]
            all_done = time.time()
            assert Counter(r["status"] for r in results) == {"succeeded": JOBS}
            assert worker.alive and worker.failure is None
            assert engine.health() == {"workers": 1, "failed_workers": []}

            async with store_of(engine).read() as conn:
                rows = (
                    await conn.execute(
                        select(
                            attempts.c.job_id,
                            attempts.c.attempt,
                            attempts.c.status,
                            attempts.c.started_at,
                            attempts.c.finished_at,
                        ).order_by(attempts.c.job_id, attempts.c.attempt)
                    )
                ).all()
            summary = _check_attempts(rows, ids, target_server)
        finally:
            await engine.close()
    finally:
        cluster.destroy()

    # Still ``done_before < JOBS``: the restart really came in the middle of the run.
    assert done_before < JOBS, "every job ended before the restart: the test proved nothing"
    _report(caplog, rows, summary, done_before, restart_began, restart_ended, all_done)


def _check_attempts(
    rows: Sequence[Any], ids: list[str], target_server: TargetServer
) -> dict[str, Any]:
    by_job: dict[str, list[Any]] = {job_id: [] for job_id in ids}
    for row in rows:
        by_job[row.job_id].append(row)
    extra: Counter[str] = Counter()
    for job_id, tried in by_job.items():
        statuses = [r.status for r in tried]
        assert statuses.count("succeeded") == 1, (job_id, statuses)
        assert statuses[-1] == "succeeded", (job_id, statuses)
        assert set(statuses[:-1]) <= {"lost"}, (job_id, statuses)
        assert [r.attempt for r in tried] == list(range(1, len(tried) + 1)), (job_id, tried)
        extra.update(statuses[:-1])
    # A cut can strand at most what was claimed around it: a few claims' worth of tasks.
    assert sum(extra.values()) <= 2 * CONCURRENCY, extra

    # Each job's call answered at least once; more only where an attempt was lost.
    calls = Counter(r.query_values("i")[0] for r in target_server.requests if r.outcome == "ok")
    for i, job_id in enumerate(ids):
        answered = calls[str(i)]
        assert 1 <= answered <= len(by_job[job_id]), (job_id, answered, by_job[job_id])
    return {"extra": dict(extra), "calls": sum(calls.values())}


def _report(
    caplog: pytest.LogCaptureFixture,
    rows: Sequence[Any],
    summary: dict[str, Any],
    done_before: int,
    began: float,
    ended: float,
    all_done: float,
) -> None:
    """Print what the run looked like (figures for the record, not assertions)."""
    started_after = [r.started_at for r in rows if r.started_at >= ended]
    finished_after = [r.finished_at for r in rows if r.finished_at and r.finished_at >= ended]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    kinds = Counter(f"{r.levelname} {r.name}: {_shape(r.getMessage())}" for r in warnings)
    recovered = [r.created for r in warnings if "works again" in r.getMessage()]
    lines = [
        f"jobs done before the restart: {done_before}/{JOBS}",
        f"pg_ctl restart took {ended - began:.2f} s",
        "first claim after the restart: "
        + (f"{min(started_after) - ended:.2f} s after it" if started_after else "none"),
        "first attempt ended after the restart: "
        + (f"{min(finished_after) - ended:.2f} s after it" if finished_after else "none"),
        "last 'works again' logged: "
        + (f"{max(recovered) - ended:.2f} s after it" if recovered else "never"),
        f"all {JOBS} jobs ended {all_done - ended:.2f} s after the restart",
        f"extra attempts: {summary['extra'] or 'none'}; calls answered: {summary['calls']}",
        f"warnings and errors logged: {len(warnings)}",
        *(f"  {n} x {kind}" for kind, n in kinds.most_common()),
    ]
    print("\n".join(["", "PostgreSQL restart under a running worker:", *lines]))


def _shape(message: str) -> str:
    """A log line without its ids, numbers and error details, to count lines of one kind."""
    first = re.sub(r"job j_\w+ task \S+", "job J task T", message.splitlines()[0])
    return re.sub(r"\d+", "N", first.split(" (", 1)[0])
