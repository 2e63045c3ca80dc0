"""pgqueuer (PostgreSQL) + aiohttp: the worker is
``python -m benchmarks.peers.pgqueuer_peer DSN CONCURRENCY``; the harness enqueues by library
call (``Queries.enqueue``, one job a call) on a database of its own."""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.aio import run_loop
from benchmarks.peers.common import (
    PG_ADMIN_DSN,
    PeerContext,
    PeerUnavailable,
    burst,
    idle,
    spawn_python,
    wait_until,
)

DATABASE = "jobqueue_bench_pgqueuer"
ENTRYPOINT = "fetch"


def _dsn(database: str) -> str:
    base, _, _ = PG_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


async def fresh_database(name: str) -> str:
    """Drop and create ``name`` on the benchmark's PostgreSQL server; its DSN."""
    import asyncpg

    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise PeerUnavailable(f"no PostgreSQL at {PG_ADMIN_DSN}: {exc}") from exc
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return _dsn(name)


async def pg_database(name: str) -> str:
    """A fresh database for JobQueue itself, as an SQLAlchemy asyncpg URL."""
    try:
        import asyncpg  # noqa: F401
    except ImportError as exc:
        raise PeerUnavailable(f"asyncpg not installed ({exc})") from exc
    dsn = await fresh_database(name)
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _serve(dsn: str, concurrency: int, target: str) -> None:
    import aiohttp
    import asyncpg
    from pgqueuer import PgQueuer
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.models import Job

    connection = await asyncpg.connect(dsn)
    pgq = PgQueuer(AsyncpgDriver(connection))
    connector = aiohttp.TCPConnector(limit=concurrency)
    session = aiohttp.ClientSession(connector=connector, trust_env=False)

    @pgq.entrypoint(ENTRYPOINT)
    async def fetch(job: Job) -> None:
        async with session.get(target) as resp:
            await resp.read()

    print("READY", flush=True)
    await pgq.run(batch_size=10, max_concurrent_tasks=max(concurrency, 20))


async def w1(ctx: PeerContext) -> dict[str, float]:
    try:
        import asyncpg
        from pgqueuer.db import AsyncpgPoolDriver
        from pgqueuer.queries import Queries
    except ImportError as exc:
        raise PeerUnavailable(f"pgqueuer not installed ({exc}): pip install -e '.[bench]'") from exc
    dsn = await fresh_database(DATABASE)
    pool: Any = await asyncpg.create_pool(dsn, min_size=2, max_size=ctx.concurrency)
    queries = Queries(AsyncpgPoolDriver(pool))
    await queries.install()
    worker = spawn_python(
        ctx, "pgqueuer-worker", "benchmarks.peers.pgqueuer_peer", dsn, str(ctx.concurrency),
        ctx.url,
    )  # fmt: skip
    try:

        async def enqueue() -> None:
            await queries.enqueue(ENTRYPOINT, None)

        async def remaining() -> int:
            return sum(row.count for row in await queries.queue_size())

        async def submit_and_wait() -> None:
            (job_id,) = await queries.enqueue(ENTRYPOINT, None)

            async def done() -> bool:
                row = await pool.fetchval("SELECT 1 FROM pgqueuer WHERE id = $1", job_id)
                return row is None

            await wait_until(done, 30, 0.001)

        figures = await burst(ctx, worker, enqueue, remaining)
        figures.update(await idle(ctx.idle_samples, submit_and_wait))
    finally:
        worker.stop()
        await pool.close()
    return figures


if __name__ == "__main__":
    run_loop(_serve(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
