"""Per-instance overhead of a ``for_each``: one task over N items, against N plain tasks.

``python -m benchmarks.for_each_overhead [--items 10000] [--runs 3]`` starts the benchmark
target in its own process and runs, on the embedded engine (a fresh SQLite file,
``synchronous=FULL``, default concurrency) a job of one ``for_each`` task over N items (each a
GET to the target) and, with ``--fan-out``, a job of N plain tasks under one root (W2's shape,
for comparison; its settling grows with N, so keep N near 1,000 then). It prints each job's
duration by its own timestamps, the time plain aiohttp needs for N GETs at the same
concurrency, and ``(duration - http) / N`` per item / task.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.procs import start_target, target_port
from engine import Engine, EngineConfig
from schemas.jobs import parse_job_document


def for_each_document(n: int, url: str) -> dict[str, Any]:
    return {
        "name": f"for-each-{n}",
        "params": {"items": list(range(n))},
        "tasks": [{"name": "each", "for_each": "{{ params.items }}", "url": url + "?i={{ item }}"}],
    }


def fan_out_document(n: int, url: str) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = [{"name": "root", "url": url}]
    tasks += [{"name": f"t{i}", "url": f"{url}?i={i}", "depends_on": ["root"]} for i in range(n)]
    return {"name": f"fan-out-{n}", "tasks": tasks}


async def http_alone(url: str, n: int, concurrency: int) -> float:
    """Seconds plain aiohttp needs for ``n`` GETs, ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            async with gate, session.get(f"{url}?i={i}") as response:
                await response.read()

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - start


async def one_job(document: dict[str, Any], db: str) -> float:
    engine = await Engine.open(EngineConfig(db_url=db, allow_private_networks=True))
    try:
        engine.start_worker()
        job_id = (await engine.submit(parse_job_document(document))).job_id
        while (await engine.get_job(job_id))["status"] in ("queued", "running"):
            await asyncio.sleep(0.2)
        job = await engine.get_job(job_id)
        assert job["status"] == "succeeded", job["status"]
        started = datetime.fromisoformat(job["created_at"])
        return (datetime.fromisoformat(job["finished_at"]) - started).total_seconds()
    finally:
        await engine.close()


async def main(n: int, runs: int, fan_out: bool) -> None:
    concurrency = EngineConfig().concurrency
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        target = start_target(stack, Path(tmp))
        url = f"http://127.0.0.1:{target_port(target)}/json"
        http = statistics.median([await http_alone(url, n, concurrency) for _ in range(3)])
        measured: dict[str, list[float]] = {"for_each": [], "fan-out DAG": []}
        for run in range(runs):
            db = f"sqlite+aiosqlite:///{tmp}/m{run}.db"
            measured["for_each"].append(await one_job(for_each_document(n, url), db))
            if fan_out:
                db = f"sqlite+aiosqlite:///{tmp}/p{run}.db"
                measured["fan-out DAG"].append(await one_job(fan_out_document(n, url), db))
    print(f"{n} items, {runs} runs, concurrency {concurrency}; plain aiohttp {http:.3f} s")
    for label, durations in measured.items():
        if not durations:
            continue
        per = [(d - http) / n * 1000 for d in durations]
        print(
            f"{label:12} job median {statistics.median(durations):.2f} s "
            f"(min {min(durations):.2f}, max {max(durations):.2f}); overhead per item "
            f"{statistics.median(per):.2f} ms (min {min(per):.2f}, max {max(per):.2f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fan-out", action="store_true", help="also run N plain tasks")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.items, args.runs, args.fan_out))
    except ImportError:
        asyncio.run(main(args.items, args.runs, args.fan_out))
