"""An API process and two worker processes on PostgreSQL, signalling over Redis or RabbitMQ.

The processes poll every 600 s: a job that runs, or a call that stops, within the test's wait
was signalled by the broker. A listener on PostgreSQL's channel shows that no ``NOTIFY`` was
sent meanwhile (with a broker the database carries no signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.integration.target_server import TargetServer
from tests.support.brokers import Broker, Outage
from tests.support.processes import Proc, Server, env_for, poll, script

SLOW = "600"
WAIT = 60.0


@contextlib.contextmanager
def cluster(
    tmp_path: Path, db_url: str, settings: dict[str, str], *, workers: int = 2
) -> Iterator[tuple[Server, list[Proc]]]:
    """``jobqueue serve`` without a worker, and ``workers`` ``jobqueue worker`` processes, each
    connected to the broker before this yields."""
    env = {"JOBQUEUE_DB_URL": db_url, "JOBQUEUE_ALLOW_PRIVATE_NETWORKS": "true", **settings}
    with Server(tmp_path, None, JOBQUEUE_EMBEDDED_WORKER="false", **env) as server:
        procs = [
            Proc(
                [script("jobqueue"), "worker"], env=env_for(None, **env), log=tmp_path / f"w{i}.log"
            )
            for i in range(workers)
        ]
        try:
            for proc in (server, *procs):
                poll(
                    lambda p=proc: "connected to broker" in p.output(),
                    timeout=WAIT,
                    what=f"{proc.log.name} connected to the broker",
                )
            yield server, procs
        finally:
            for proc in procs:
                proc.stop()


def submit(base: str, url: str) -> str:
    response = httpx.post(f"{base}/api/v1/jobs", json={"url": url}, timeout=30)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def status(base: str, job_id: str) -> str:
    return str(httpx.get(f"{base}/api/v1/jobs/{job_id}", timeout=10).json()["status"])


class NotifyCounter:
    """LISTEN on JobQueue's PostgreSQL channel in a thread of its own; counts notifications."""

    def __init__(self, db_url: str) -> None:
        self._dsn = make_url(db_url).set(drivername="postgresql").render_as_string(False)
        self.count = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        conn = await asyncpg.connect(self._dsn)
        try:
            await conn.add_listener("jobqueue_ready", self._heard)
            self._ready.set()
            await self._stop.wait()
        finally:
            await conn.close()

    def _heard(self, *_: Any) -> None:
        self.count += 1

    def __enter__(self) -> NotifyCounter:
        self._thread.start()
        assert self._ready.wait(30), "LISTEN did not start"
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.mark.slow
def test_the_broker_wakes_a_worker_process_for_a_submit(
    tmp_path: Path, target_server: TargetServer, db_url: str, broker: Broker
) -> None:
    settings = {**broker.settings(), "JOBQUEUE_POLL_INTERVAL": SLOW}
    with cluster(tmp_path, db_url, settings) as (server, _), NotifyCounter(db_url) as notifies:
        # One after the other: each submit finds both workers waiting out their 600 s poll.
        for i in range(3):
            job_id = submit(server.url, target_server.url(f"/json?i={i}"))
            poll(
                lambda j=job_id: status(server.url, j) == "succeeded",
                timeout=WAIT,
                what="the job ran",
            )
    assert notifies.count == 0, "with a broker, the database sends no NOTIFY"


@pytest.mark.slow
def test_a_cancel_reaches_the_call_in_a_worker_process(
    tmp_path: Path, target_server: TargetServer, db_url: str, broker: Broker
) -> None:
    settings = {
        **broker.settings(),
        "JOBQUEUE_POLL_INTERVAL": SLOW,
        "JOBQUEUE_DEFAULT_TIMEOUT": SLOW,  # the call ends by the cancel, not by its timeout
    }
    with cluster(tmp_path, db_url, settings) as (server, _):
        job_id = submit(server.url, target_server.url("/slow?seconds=900"))
        poll(lambda: len(target_server.requests) == 1, timeout=WAIT, what="the call started")
        canceled = httpx.post(f"{server.url}/api/v1/jobs/{job_id}/cancel", timeout=30)
        assert canceled.status_code == 200, canceled.text
        poll(
            lambda: target_server.requests[0].outcome == "cancelled",
            timeout=WAIT,
            what="the worker interrupted the call",
        )
        assert status(server.url, job_id) == "canceled"


JOBS = 300


def _submit_batch(base: str, target: TargetServer, start: int, count: int) -> list[str]:
    docs = [{"url": target.url(f"/slow?seconds=0.02&i={i}")} for i in range(start, start + count)]
    response = httpx.post(f"{base}/api/v1/jobs/batch", json={"jobs": docs}, timeout=60)
    assert response.status_code in (200, 201, 207), response.text
    return [item["job_id"] for item in response.json()["items"]]


def _count(base: str, status: str) -> int:
    page = httpx.get(f"{base}/api/v1/jobs", params={"status": status, "limit": 1000}, timeout=30)
    return len(page.json()["items"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_a_broker_outage_in_the_middle_of_300_jobs_loses_none(
    tmp_path: Path, target_server: TargetServer, db_url: str, kind: str
) -> None:
    outage = Outage(kind, tmp_path)
    outage.up()
    settings = {
        "JOBQUEUE_BROKER_URL": outage.url,
        "JOBQUEUE_POLL_INTERVAL": "0.5",
        "JOBQUEUE_CONCURRENCY": "8",
    }
    try:
        with cluster(tmp_path, db_url, settings) as (server, workers):
            ids = _submit_batch(server.url, target_server, 0, 100)
            outage.down()
            for proc in (server, *workers):
                poll(
                    lambda p=proc: "falling back to polling" in p.output(),
                    timeout=WAIT,
                    what="outage seen",
                )
            health = httpx.get(f"{server.url}/healthz", timeout=10)
            assert health.status_code == 200, health.text
            assert health.json()["broker"]["state"] == "down"
            ids += _submit_batch(server.url, target_server, 100, 100)
            poll(lambda: _count(server.url, "succeeded") >= 150, timeout=WAIT, what="polling")
            outage.up()
            for proc in (server, *workers):
                poll(lambda p=proc: "is back" in p.output(), timeout=WAIT, what="reconnected")
            ids += _submit_batch(server.url, target_server, 200, 100)
            poll(lambda: _count(server.url, "succeeded") == JOBS, timeout=120, what="all ran")
            assert httpx.get(f"{server.url}/healthz").json()["broker"]["state"] == "connected"
            logs = [proc.output() for proc in (server, *workers)]
            attempts = {
                job_id: len(
                    httpx.get(f"{server.url}/api/v1/jobs/{job_id}/tasks/main/attempts").json()[
                        "attempts"
                    ]
                )
                for job_id in ids
            }
    finally:
        outage.down()
    assert len(set(ids)) == JOBS
    calls = Counter(r.header("idempotency-key") for r in target_server.requests)
    assert set(calls) == {f"{job_id}:main" for job_id in ids}, "every job called its target"
    repeated = {key: n for key, n in calls.items() if n > 1}
    assert all(n == attempts[key.split(":")[0]] for key, n in repeated.items()), (
        "a call made twice only as a new attempt of an interrupted one"
    )
    for log in logs:
        assert log.count("falling back to polling") == 1, "one line per outage, not per signal"
        assert log.count("is back") == 1
        assert "Traceback" not in log
