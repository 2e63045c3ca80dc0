"""Exactly one job per tick with two scheduler processes on one database.

Two ``jobqueue worker`` processes (each runs the scheduler loop) and an API process without a
worker share the database; a per-second schedule runs for several seconds. Every tick must
create exactly one job (no duplicate) and no tick in the window may be missing (no gap); the
tick's time arrives at the target through ``schedule.fire_time``. The same scenario runs on
PostgreSQL in tests/pg/test_schedules_on_postgres.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.target_server import TargetServer
from tests.support.processes import Proc, Server, env_for, poll, script

TICKS = 8


def _fired(base: str) -> list[dict[str, object]]:
    recent: list[dict[str, object]] = httpx.get(f"{base}/api/v1/schedules/every-second").json()[
        "recent"
    ]
    return recent


def _drained(base: str) -> bool:
    for status in ("queued", "running"):
        page = httpx.get(f"{base}/api/v1/jobs", params={"status": status, "limit": 1}).json()
        if page["items"]:
            return False
    return True


def run_two_schedulers(tmp_path: Path, target: TargetServer, db_url: str) -> Counter[str]:
    """Returns how many requests the target received per fire time."""
    settings = {
        "JOBQUEUE_DB_URL": db_url,
        "JOBQUEUE_ALLOW_PRIVATE_NETWORKS": "true",
        "JOBQUEUE_POLL_INTERVAL": "0.05",
        # the log says which process created each tick's job and which found it taken
        "JOBQUEUE_LOG_LEVEL": "debug",
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
            doc = {
                "name": "every-second",
                "cron": "* * * * * *",
                "job": {
                    "method": "POST",
                    "url": target.url("/echo"),
                    "body": {"at": "{{ schedule.fire_time }}"},
                },
            }
            created = httpx.post(f"{server.url}/api/v1/schedules", json=doc)
            assert created.status_code == 201, created.text
            poll(
                lambda: len(_fired(server.url)) >= TICKS or None,
                timeout=60,
                what=f"{TICKS} ticks fired",
            )
            stopped = httpx.patch(
                f"{server.url}/api/v1/schedules/every-second", json={"enabled": False}
            )
            assert stopped.status_code == 200
            poll(lambda: _drained(server.url) or None, timeout=60, what="every job ended")
            for worker in workers:
                assert worker.popen.poll() is None, worker.output()
        finally:
            for worker in workers:
                worker.stop()
    return Counter(orjson.loads(r.body)["at"] for r in target.requests)


def check_one_job_per_tick(calls: Counter[str]) -> None:
    assert len(calls) >= TICKS
    duplicates = {tick: n for tick, n in calls.items() if n > 1}
    assert duplicates == {}, "a tick created more than one job"
    seconds = sorted(
        int(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()) for t in calls
    )
    assert seconds == list(range(seconds[0], seconds[-1] + 1)), "a tick in the window is missing"


@pytest.mark.slow
def test_two_scheduler_processes_fire_each_tick_exactly_once(
    tmp_path: Path, target_server: TargetServer
) -> None:
    calls = run_two_schedulers(
        tmp_path, target_server, f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    )
    check_one_job_per_tick(calls)
