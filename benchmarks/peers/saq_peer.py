"""saq (Redis) + aiohttp: the worker is
``python -m benchmarks.peers.saq_peer REDIS_URL CONCURRENCY``; the harness
enqueues by library call (``Queue.enqueue``), as a saq user would."""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.aio import run_loop
from benchmarks.peers.common import (
    REDIS_URL,
    PeerContext,
    PeerUnavailable,
    burst,
    idle,
    spawn_python,
    wait_until,
)

QUEUE_NAME = "bench"


async def fetch(ctx: Any, *, url: str) -> int:
    async with ctx["session"].get(url) as resp:
        await resp.read()
        return resp.status


async def _serve(redis_url: str, concurrency: int) -> None:
    import aiohttp
    from saq import Queue, Worker

    async def startup(ctx: Any) -> None:
        connector = aiohttp.TCPConnector(limit=concurrency)
        ctx["session"] = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def shutdown(ctx: Any) -> None:
        await ctx["session"].close()

    queue = Queue.from_url(redis_url, name=QUEUE_NAME)
    worker = Worker(queue, [fetch], concurrency=concurrency, startup=startup, shutdown=shutdown)
    print("READY", flush=True)
    await worker.start()


async def w1(ctx: PeerContext) -> dict[str, float]:
    try:
        from redis import asyncio as aioredis
        from saq import Queue
    except ImportError as exc:
        hint = "pip install -e '.[bench]'"
        raise PeerUnavailable(f"saq/redis not installed ({exc}): {hint}") from exc
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
        await client.flushdb()
    except (OSError, aioredis.RedisError) as exc:
        raise PeerUnavailable(f"no Redis at {REDIS_URL}: {exc}") from exc
    finally:
        await client.aclose()
    worker = spawn_python(
        ctx, "saq-worker", "benchmarks.peers.saq_peer", REDIS_URL, str(ctx.concurrency)
    )
    queue = Queue.from_url(REDIS_URL, name=QUEUE_NAME)
    await queue.connect()
    try:

        async def enqueue() -> None:
            await queue.enqueue("fetch", url=ctx.url, timeout=30)

        async def submit_and_wait() -> None:
            job = await queue.enqueue("fetch", url=ctx.url, timeout=30)
            assert job is not None

            async def done() -> bool:
                await job.refresh()
                return bool(job.completed)

            await wait_until(done, 30, 0.001)

        figures = await burst(ctx, worker, enqueue, lambda: queue.count("incomplete"))
        figures.update(await idle(ctx.idle_samples, submit_and_wait))
    finally:
        await queue.disconnect()
        worker.stop()
    return figures


if __name__ == "__main__":
    run_loop(_serve(sys.argv[1], int(sys.argv[2])))
