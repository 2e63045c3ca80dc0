"""huey (SQLite, ``synchronous=FULL``, thread workers) + httpx: jobs enqueued by calling the task,
from a pool of threads as wide as the concurrency (huey's enqueue is blocking)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks.peers.common import PeerContext, PeerUnavailable, burst, idle, spawn_python


async def w1(ctx: PeerContext) -> dict[str, float]:
    db = ctx.workdir / "huey-bench.db"
    os.environ["JOBQUEUE_BENCH_HUEY_DB"] = str(db)  # read when huey_app is first imported
    try:
        from benchmarks.peers import huey_app
    except ImportError as exc:
        raise PeerUnavailable(f"huey not installed ({exc}): pip install -e '.[bench]'") from exc
    if huey_app.huey.storage.filename != str(db):
        huey_app.huey.storage.filename = str(db)
    huey = huey_app.huey
    huey.flush()
    worker = spawn_python(
        ctx, "huey-worker", "benchmarks.peers.huey_peer", str(ctx.concurrency),
        JOBQUEUE_BENCH_HUEY_DB=str(db),
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(ctx.concurrency)
    expected = 0

    async def enqueue() -> None:
        nonlocal expected
        expected += 1
        await loop.run_in_executor(pool, huey_app.fetch, ctx.url)

    async def remaining() -> int:
        done = await loop.run_in_executor(pool, huey.result_count)
        return max(expected - done, 0)

    def one_idle() -> None:
        result = huey_app.fetch(ctx.url)
        deadline = time.monotonic() + 30
        while result.get() is None:
            if time.monotonic() > deadline:
                raise TimeoutError("huey job not finished after 30 s")
            time.sleep(0.001)

    async def submit_and_wait() -> None:
        await loop.run_in_executor(pool, one_idle)

    try:
        figures = await burst(ctx, worker, enqueue, remaining)
        figures.update(await idle(ctx.idle_samples, submit_and_wait))
    finally:
        pool.shutdown(wait=False)
        worker.stop()
    return figures


def _consume(workers: int) -> None:
    from huey.consumer import Consumer

    from benchmarks.peers.huey_app import huey

    # short polling delays: huey's defaults (0.1 s, backing off to 10 s) would measure the poll
    consumer = Consumer(
        huey, workers=workers, worker_type="thread", periodic=False,
        initial_delay=0.001, backoff=1.15, max_delay=0.05,
    )  # fmt: skip
    print("READY", flush=True)
    consumer.run()


if __name__ == "__main__":
    _consume(int(sys.argv[1]))
