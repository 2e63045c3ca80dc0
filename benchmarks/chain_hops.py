"""Per-hop overhead of a chain: one job of N tasks, each reading its upstream's output.

``python -m benchmarks.chain_hops [--tasks 100] [--runs 5]`` starts the benchmark target in its
own process, runs the chain on the embedded engine (a fresh SQLite file, ``synchronous=FULL``),
and prints the job's duration by its own timestamps, the HTTP round trip measured alone, and
``(duration - N * rtt) / N``: what JobQueue adds per hop (promote in the recording transaction,
claim, render from stored output, record).
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

import aiohttp

from benchmarks.procs import start_target, target_port
from engine import Engine, EngineConfig
from schemas.jobs import parse_job_document


def chain_document(n: int, url: str) -> dict[str, object]:
    tasks: list[dict[str, object]] = [{"name": "t0", "url": url}]
    for i in range(1, n):
        # Each hop reads its upstream's stored output: a real data dependency, not just an edge.
        tasks.append({"name": f"t{i}", "url": url + f"?from={{{{ tasks.t{i - 1}.status_code }}}}"})
    return {"name": f"chain-{n}", "tasks": tasks}


async def round_trip(url: str, samples: int = 50) -> float:
    async with aiohttp.ClientSession() as session:
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


async def one_run(n: int, url: str, workdir: Path, run: int) -> float:
    db = f"sqlite+aiosqlite:///{workdir / f'chain{run}.db'}"
    engine = await Engine.open(EngineConfig(db_url=db, allow_private_networks=True))
    try:
        engine.start_worker()
        job_id = (await engine.submit(parse_job_document(chain_document(n, url)))).job_id
        while (await engine.get_job(job_id))["status"] in ("queued", "running"):
            await asyncio.sleep(0.05)
        job = await engine.get_job(job_id)
        assert job["status"] == "succeeded", job["status"]
        started = datetime.fromisoformat(job["created_at"])
        return (datetime.fromisoformat(job["finished_at"]) - started).total_seconds()
    finally:
        await engine.close()


async def main(n: int, runs: int) -> None:
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        target = start_target(stack, Path(tmp))
        url = f"http://127.0.0.1:{target_port(target)}/json"
        rtt = await round_trip(url)
        durations = [await one_run(n, url, Path(tmp), run) for run in range(runs)]
    per_hop = [(d - n * rtt) / n * 1000 for d in durations]
    print(f"chain of {n} tasks, {runs} runs; HTTP round trip alone {rtt * 1000:.2f} ms")
    print(
        f"job duration median {statistics.median(durations):.3f} s "
        f"(min {min(durations):.3f}, max {max(durations):.3f})"
    )
    print(
        f"overhead per hop median {statistics.median(per_hop):.2f} ms "
        f"(min {min(per_hop):.2f}, max {max(per_hop):.2f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        import uvloop  # the loop `jobqueue serve` and `jobqueue worker` use when installed

        uvloop.run(main(args.tasks, args.runs))
    except ImportError:
        asyncio.run(main(args.tasks, args.runs))
