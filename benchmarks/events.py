"""Live events under load: one 1,000-task DAG (``root -> t1..t998 -> sink``) followed over one
WebSocket and, in a second run, over Server-Sent Events.

``python -m benchmarks.events [--tasks 1000] [--runs 3]`` starts the benchmark target and
``jobqueue serve`` (embedded worker, a fresh SQLite file, ``synchronous=FULL``) in their own
processes. Each run submits the DAG scheduled a moment ahead, opens the stream before it starts,
and reads every message until the server closes the stream. It prints, per transport: the
events delivered, events/s from the first change to the last, and the delay from a change (the
event's ``at``, written in the committing transaction) to its arrival at the client (median and
p99). Then the same DAG without any stream open: how long the job takes with and without a
reader (both by the job's own timestamps).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.jobdocs import fan_out_fan_in
from benchmarks.loadgen import percentile
from benchmarks.procs import start_target, target_port
from benchmarks.servers import start_server

#: the DAG starts this long after it is submitted, so that the stream is open before it runs
LEAD_SECONDS = 1.0


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _submit(session: aiohttp.ClientSession, base: str, url: str, n: int) -> str:
    document = fan_out_fan_in(url, n)
    start = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    document["scheduled_at"] = start.isoformat().replace("+00:00", "Z")
    async with session.post(f"{base}/api/v1/jobs", json=document) as response:
        assert response.status == 201, await response.text()
        job_id: str = (await response.json())["job_id"]
        return job_id


async def _read_ws(session: aiohttp.ClientSession, base: str, job_id: str) -> list[Any]:
    arrivals = []
    ws_url = base.replace("http", "ws", 1) + f"/api/v1/jobs/{job_id}/events"
    async with session.ws_connect(ws_url, max_msg_size=0) as ws:
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                break
            arrivals.append((time.time(), orjson.loads(frame.data)))
    return arrivals


async def _read_sse(session: aiohttp.ClientSession, base: str, job_id: str) -> list[Any]:
    arrivals = []
    url = f"{base}/api/v1/events?job_id={job_id}"
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        async for line in response.content:
            if line.startswith(b"data:"):
                arrivals.append((time.time(), orjson.loads(line[5:])))
    return arrivals


async def _job_seconds(session: aiohttp.ClientSession, base: str, job_id: str) -> float:
    while True:
        async with session.get(f"{base}/api/v1/jobs/{job_id}") as response:
            job = await response.json()
        if job["finished_at"]:
            assert job["status"] == "succeeded", job["status"]
            return _epoch(job["finished_at"]) - _epoch(job["started_at"])
        await asyncio.sleep(0.05)


def _figures(arrivals: list[Any], seconds: float) -> dict[str, float]:
    changes = [(t, m) for t, m in arrivals if m["type"] != "snapshot"]
    delays = [(t - _epoch(m["at"])) * 1000 for t, m in changes]
    span = changes[-1][0] - _epoch(changes[0][1]["at"])
    return {
        "events": len(changes),
        "events_per_s": len(changes) / span,
        "delay_p50_ms": statistics.median(delays),
        "delay_p99_ms": percentile(delays, 99),
        "job_s": seconds,
    }


async def main(n: int, runs: int) -> None:
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        target = start_target(stack, Path(tmp))
        url = f"http://127.0.0.1:{target_port(target)}/json"
        server = await start_server(stack, Path(tmp), "events", embedded=True)
        async with aiohttp.ClientSession() as session:
            results: dict[str, list[dict[str, float]]] = {"ws": [], "sse": [], "none": []}
            for _ in range(runs):
                for kind, read in (("ws", _read_ws), ("sse", _read_sse)):
                    job_id = await _submit(session, server.base, url, n)
                    arrivals = await read(session, server.base, job_id)
                    seconds = await _job_seconds(session, server.base, job_id)
                    results[kind].append(_figures(arrivals, seconds))
                job_id = await _submit(session, server.base, url, n)
                results["none"].append({"job_s": await _job_seconds(session, server.base, job_id)})
    print(f"one DAG of {n} tasks (root -> {n - 2} -> sink), {runs} runs, medians:")
    for kind in ("ws", "sse"):
        rows = results[kind]
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(
            f"  {kind:>3}: {med['events']:.0f} events, {med['events_per_s']:.0f} events/s, "
            f"change -> client p50 {med['delay_p50_ms']:.1f} ms, p99 {med['delay_p99_ms']:.1f} ms, "
            f"job {med['job_s']:.2f} s"
        )
    alone = statistics.median(r["job_s"] for r in results["none"])
    print(f"  job with no stream open: {alone:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.runs))
