"""The worker's LISTEN connection (PostgreSQL wake-ups across processes) is cut by the server: the
worker listens again on a new connection, gives the lost one back to the pool instead of leaking
it, and keeps running jobs submitted by another engine (another process)."""

from __future__ import annotations

import gc
import logging
import warnings

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from engine import Engine
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.pg.conftest import PG_ADMIN_DSN
from tests.support.config import make_config
from tests.support.waiting import job_ends, until


async def listening_pids(admin: asyncpg.Connection, database: str) -> set[int]:
    rows = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
        database,
    )
    return {row["pid"] for row in rows}


async def test_lost_listen_connection_is_replaced_and_not_leaked(
    db_url: str, target_server: TargetServer, caplog: pytest.LogCaptureFixture
) -> None:
    database = make_url(db_url).database
    assert database
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    # poll 0.2 s: the listen loop looks at its connection that often
    worker_side = await Engine.open(make_config(db_url, poll_interval=0.2))
    api_side = await Engine.open(make_config(db_url))
    try:
        worker = worker_side.start_worker()

        async def one_listener() -> set[int]:
            pids = await listening_pids(admin, database)
            return pids if len(pids) == 1 else set()

        (first,) = await until(one_listener, timeout=10)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)

            async def listens_again() -> set[int]:
                pids = await listening_pids(admin, database)
                return pids if pids and first not in pids else set()

            await until(listens_again, timeout=10)
            gc.collect()  # a connection dropped while checked out is reported when collected
        leaked = [w for w in caught if "non-checked-in connection" in str(w.message)]
        assert not leaked, [str(w.message) for w in leaked]
        assert not [r for r in caplog.records if "non-checked-in" in r.getMessage()]

        submitted = await api_side.submit(
            parse_job_document({"url": target_server.url("/json")}), single_call=True
        )
        job = await job_ends(api_side, submitted.job_id, timeout=10)
        assert job["status"] == "succeeded"
        assert worker.alive and worker_side.health()["failed_workers"] == []
        said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert not [m for m in said if "stops" in m], said
    finally:
        await worker_side.close()
        await api_side.close()
        await admin.close()
