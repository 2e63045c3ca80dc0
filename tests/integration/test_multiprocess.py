"""Scale-out: an API process and two worker processes sharing one database.

The same scenario runs on a SQLite file here and on PostgreSQL in ``tests/pg``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.target_server import TargetServer
from tests.support.brokers import Broker
from tests.support.processes import Proc, Server, env_for, poll, script

JOBS = 300


def _drained(base: str) -> bool:
    for status in ("queued", "running"):
        page = httpx.get(f"{base}/api/v1/jobs", params={"status": status, "limit": 1}).json()
        if page["items"]:
            return False
    return True


def _attempts(base: str, job_id: str) -> list[dict[str, object]]:
    url = f"{base}/api/v1/jobs/{job_id}/tasks/main/attempts"
    attempts: list[dict[str, object]] = httpx.get(url).json()["attempts"]
    return attempts


def run_scale_out(
    tmp_path: Path, target: TargetServer, db_url: str, extra: dict[str, str] | None = None
) -> None:
    """Submit JOBS single calls; two worker processes must run each exactly once.
    ``extra``: more settings of every process (a broker)."""
    settings = {
        "JOBQUEUE_DB_URL": db_url,
        "JOBQUEUE_ALLOW_PRIVATE_NETWORKS": "true",
        "JOBQUEUE_CONCURRENCY": "8",
        "JOBQUEUE_POLL_INTERVAL": "0.05",
        **(extra or {}),
    }
    with Server(tmp_path, None, JOBQUEUE_EMBEDDED_WORKER="false", **settings) as server:
        workers = [
            Proc(
                [script("jobqueue"), "worker"],
                env=env_for(None, **settings),
                log=tmp_path / f"w{i}.log",
            )
            for i in range(2)
        ]
        try:
            docs = [{"url": target.url(f"/slow?seconds=0.01&i={i}")} for i in range(JOBS)]
            response = httpx.post(
                f"{server.url}/api/v1/jobs/batch", json={"jobs": docs}, timeout=60
            )
            ids = [item["job_id"] for item in response.json()["items"]]
            assert len(ids) == JOBS
            poll(lambda: _drained(server.url), timeout=120, what="every job ended")
            done = httpx.get(
                f"{server.url}/api/v1/jobs", params={"status": "succeeded", "limit": 1000}
            )
            assert len(done.json()["items"]) == JOBS
            attempts = [_attempts(server.url, job_id) for job_id in ids]
        finally:
            for worker in workers:
                worker.stop()
    assert {len(a) for a in attempts} == {1}, "no task was claimed twice"
    assert len({a[0]["worker"] for a in attempts}) == 2, "both worker processes took work"
    calls = Counter(r.header("x-jobqueue-job") for r in target.requests)
    assert set(calls) == set(ids) and set(calls.values()) == {1}, "one HTTP call per job"


@pytest.mark.slow
@pytest.mark.parametrize("signals", ["file-watch", "redis", "rabbitmq"])
def test_two_worker_processes_run_every_job_exactly_once(
    tmp_path: Path, target_server: TargetServer, signals: str, request: pytest.FixtureRequest
) -> None:
    """With wake-ups from the watch of the SQLite file, or over a broker."""
    extra = {}
    if signals != "file-watch":
        broker: Broker = request.getfixturevalue(f"{signals}_broker")
        extra = broker.settings()
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    run_scale_out(tmp_path, target_server, db_url, extra)
