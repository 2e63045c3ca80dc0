"""What every peer adapter shares: its inputs, the "skip me" exception, the figures it reports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.loadgen import Meter, bounded, median
from benchmarks.procs import Proc, clean_env, cpu_seconds, spawn

#: a Redis database number of its own, flushed before each peer run
REDIS_URL = os.environ.get("JOBQUEUE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
#: the PostgreSQL server; the harness creates (and drops) databases of its own on it
PG_ADMIN_DSN = os.environ.get(
    "JOBQUEUE_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class PeerUnavailable(Exception):
    """The peer cannot run here (package or service missing): it is skipped, with the reason."""


@dataclass
class PeerContext:
    url: str  #: the target's GET URL
    jobs: int
    concurrency: int
    idle_samples: int
    workdir: Path
    stack: contextlib.ExitStack
    timeout: float


def spawn_python(ctx: PeerContext, name: str, module: str, *args: str, **env: str) -> Proc:
    """``python -m module args`` in its own process group, logging to the work dir."""
    argv = [sys.executable, "-m", module, *args]
    return spawn(ctx.stack, name, argv, ctx.workdir, clean_env(env))


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"not done after {timeout:.0f}s")


async def burst(
    ctx: PeerContext,
    worker: Proc,
    enqueue: Callable[[], Awaitable[None]],
    remaining: Callable[[], Awaitable[int]],
) -> dict[str, float]:
    """Enqueue ``ctx.jobs`` jobs at ``ctx.concurrency`` and watch them drain (every 20 ms).

    ``e2e_jobs_per_s`` is jobs / (drain seen - first enqueue), the same clock JobQueue's
    ``e2e_wall_jobs_per_s`` uses."""

    async def one(_: int) -> None:
        await enqueue()

    await bounded(ctx.concurrency, ctx.concurrency, one)  # warm-up
    await wait_until(lambda: _none_left(remaining), ctx.timeout, 0.02)
    cpu0 = cpu_seconds(worker.pid)
    with Meter() as whole:
        start = time.perf_counter()
        await bounded(ctx.jobs, ctx.concurrency, one)
        enqueued = time.perf_counter() - start
        await wait_until(lambda: _none_left(remaining), ctx.timeout, 0.02)
    cpu = cpu_seconds(worker.pid) - cpu0
    return {
        "jobs": ctx.jobs,
        "enqueue_rps": ctx.jobs / enqueued,
        "e2e_jobs_per_s": ctx.jobs / whole.wall,
        "e2e_wall_s": whole.wall,
        "worker_cpu_ms_per_job": cpu / ctx.jobs * 1000,
        **whole.figures("gen"),
    }


async def _none_left(remaining: Callable[[], Awaitable[int]]) -> bool:
    return await remaining() == 0


async def idle(samples: int, submit_and_wait: Callable[[], Awaitable[None]]) -> dict[str, float]:
    """One job at a time, ``samples`` times: median of enqueue -> seen finished (1 ms polls)."""
    took: list[float] = []
    for _ in range(samples):
        start = time.perf_counter()
        await submit_and_wait()
        took.append(time.perf_counter() - start)
        await asyncio.sleep(0.01)
    return {"idle_samples": samples, "idle_latency_polled_ms": median(took) * 1000}
