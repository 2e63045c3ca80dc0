"""Two worker processes and an API process on one PostgreSQL database (SKIP LOCKED claims)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.target_server import TargetServer
from tests.integration.test_multiprocess import run_scale_out
from tests.support.brokers import Broker


@pytest.mark.slow
@pytest.mark.parametrize("signals", ["postgresql", "redis", "rabbitmq"])
async def test_two_worker_processes_run_every_job_exactly_once(
    tmp_path: Path,
    target_server: TargetServer,
    db_url: str,
    signals: str,
    request: pytest.FixtureRequest,
) -> None:
    """With wake-ups over PostgreSQL's NOTIFY, or over a broker."""
    extra = {}
    if signals != "postgresql":
        broker: Broker = request.getfixturevalue(f"{signals}_broker")
        extra = broker.settings()
    await asyncio.to_thread(run_scale_out, tmp_path, target_server, db_url, extra)


async def test_processes_starting_together_migrate_one_at_a_time(db_url: str) -> None:
    """Four engines opening a fresh database at once: one migrates, the others find it done."""
    from engine import Engine
    from tests.support.config import make_config

    opening = asyncio.gather(*(Engine.open(make_config(db_url)) for _ in range(4)))
    engines = await asyncio.wait_for(opening, timeout=60)  # unserialised, they deadlock
    try:
        for engine in engines:
            await engine.ping()
    finally:
        await asyncio.gather(*(engine.close() for engine in engines))
