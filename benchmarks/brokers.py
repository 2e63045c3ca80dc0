"""Signals between processes on PostgreSQL: ``python -m benchmarks.run --broker URL``.

For one signal path (``none``: PostgreSQL's ``NOTIFY``; or a Redis / RabbitMQ URL) it starts an
API process without a worker and 1, 2 and 4 ``jobqueue worker`` processes on a fresh PostgreSQL
database each, every process polling only every 10 s (so a job that starts sooner was woken by
the signal), and measures:

- idle latency across processes (one worker): one job at a time, submit to start of the call
  (``idle_wait_ms``) and submit to end as the client sees it (``idle_latency_polled_ms``);
- W1: single-call jobs over the REST API at a fixed concurrency, end-to-end jobs/s.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import asyncpg
from ulid import ULID

from benchmarks.procs import clean_env, free_port, spawn, start_target, target_port, wait_ready
from benchmarks.servers import Commands, Server, serve_argv, worker_argv
from benchmarks.workloads import idle_latency, w1_bulk

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
POLL_INTERVAL = "10"
CONCURRENCY = 32


async def _create_database(admin_dsn: str) -> tuple[str, str]:
    """A fresh database: (its name, its SQLAlchemy URL)."""
    name = f"jq_bench_{str(ULID()).lower()}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f"{base}/{name}"


async def _drop_database(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _one_layout(
    broker: str | None,
    workers: int,
    workdir: Path,
    url: str,
    *,
    jobs: int,
    idle_samples: int,
    admin_dsn: str,
) -> dict[str, Any]:
    name, db_url = await _create_database(admin_dsn)
    settings = {
        "JOBQUEUE_DB_URL": db_url,
        "JOBQUEUE_CONCURRENCY": str(CONCURRENCY),
        "JOBQUEUE_ALLOW_PRIVATE_NETWORKS": "true",
        "JOBQUEUE_EMBEDDED_WORKER": "false",
        "JOBQUEUE_POLL_INTERVAL": POLL_INTERVAL,
        "JOBQUEUE_SHUTDOWN_GRACE": "2",
        "JOBQUEUE_LOG_LEVEL": "warning",
    }
    if broker:
        settings["JOBQUEUE_BROKER_URL"] = broker
    commands = Commands()
    try:
        with contextlib.ExitStack() as stack:
            port = free_port()
            tag = f"{workers}w-{name[-6:]}"
            api = spawn(
                stack, f"api-{tag}", serve_argv(port, commands), workdir, clean_env(settings)
            )
            base = f"http://127.0.0.1:{port}"
            startup = await wait_ready(api, f"{base}/healthz")
            procs = [
                spawn(
                    stack, f"worker{i}-{tag}", worker_argv(commands), workdir, clean_env(settings)
                )
                for i in range(workers)
            ]
            server = Server(base, api, procs[0], workdir, startup, more_workers=procs[1:])
            figures: dict[str, Any] = {"workers": workers}
            if workers == 1:
                figures |= await idle_latency(server, url, idle_samples)
            figures |= await w1_bulk(server, url, jobs, CONCURRENCY, timeout=300)
            return figures
    finally:
        await _drop_database(admin_dsn, name)


async def measure(
    broker: str | None,
    workdir: Path,
    *,
    worker_counts: tuple[int, ...] = (1, 2, 4),
    jobs: int = 2000,
    idle_samples: int = 50,
    admin_dsn: str = PG_ADMIN_DSN,
) -> dict[str, Any]:
    """Every layout for one signal path; the document ``benchmarks.run`` writes."""
    with contextlib.ExitStack() as stack:
        target = start_target(stack, workdir)
        url = f"http://127.0.0.1:{target_port(target)}/json"
        started = time.time()
        layouts = [
            await _one_layout(
                broker,
                n,
                workdir,
                url,
                jobs=jobs,
                idle_samples=idle_samples,
                admin_dsn=admin_dsn,
            )
            for n in worker_counts
        ]
    return {
        "signals": "postgresql-notify" if not broker else broker.split(":", 1)[0],
        "poll_interval_s": float(POLL_INTERVAL),
        "concurrency": CONCURRENCY,
        "jobs": jobs,
        "seconds": time.time() - started,
        "layouts": layouts,
    }


def render(document: dict[str, Any]) -> str:
    lines = [
        f"signals: {document['signals']} (poll every {document['poll_interval_s']:.0f} s, "
        f"{document['jobs']} jobs, {document['concurrency']} concurrent submits)",
        f"{'workers':>8} {'idle wait ms':>13} {'idle e2e ms':>12} {'W1 jobs/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8}",
    ]
    for row in document["layouts"]:
        idle_wait = row.get("idle_wait_ms")
        idle_e2e = row.get("idle_latency_polled_ms")
        lines.append(
            f"{row['workers']:>8} "
            f"{'' if idle_wait is None else f'{idle_wait:.1f}':>13} "
            f"{'' if idle_e2e is None else f'{idle_e2e:.1f}':>12} "
            f"{row['e2e_jobs_per_s']:>10.0f} {row['latency_p50_ms']:>8.0f} "
            f"{row['latency_p99_ms']:>8.0f}"
        )
    return "\n".join(lines)
