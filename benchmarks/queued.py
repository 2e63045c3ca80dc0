"""RSS of the API process with many jobs queued (no worker: JOBQUEUE_EMBEDDED_WORKER=false).

Jobs go in through ``POST /api/v1/jobs/batch`` (up to 1,000 documents a request) when the server
answers it, else one ``POST /api/v1/jobs`` each at the harness's concurrency.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from benchmarks import jobdocs
from benchmarks.loadgen import Api, Meter, bounded, new_session, submit_many
from benchmarks.procs import memory_mb
from benchmarks.servers import Server

BATCH = 1000


async def _batch_supported(api: Api, doc: dict[str, Any]) -> bool:
    code, body = await api.post("/jobs/batch", orjson.dumps({"jobs": [doc]}))
    return code in (200, 201, 207) and isinstance(body, dict) and "items" in body


async def _submit_batches(api: Api, doc: dict[str, Any], n: int) -> int:
    """Submit ``n`` jobs in batches two requests at a time; returns how many were accepted."""
    accepted = 0
    batches = [min(BATCH, n - start) for start in range(0, n, BATCH)]

    async def one(i: int) -> None:
        nonlocal accepted
        code, body = await api.post("/jobs/batch", orjson.dumps({"jobs": [doc] * batches[i]}))
        if code not in (200, 201, 207) or not isinstance(body, dict):
            raise RuntimeError(f"POST /jobs/batch answered {code}: {str(body)[:300]}")
        accepted += sum(1 for item in body["items"] if item.get("job_id"))

    await bounded(len(batches), 2, one)
    return accepted


async def rss_with_queued(server: Server, url: str, n: int, concurrency: int) -> dict[str, Any]:
    """Queue ``n`` jobs, then read the API process's VmRSS / VmHWM and time one list query."""
    doc = jobdocs.single_call(url)
    async with new_session(concurrency + 2) as session:
        api = Api(session, server.base)
        before = memory_mb(server.api.pid)
        batch = await _batch_supported(api, doc)
        with Meter() as meter:
            if batch:
                accepted = 1 + await _submit_batches(api, doc, n - 1)
            else:
                accepted = len((await submit_many(api, doc, n, concurrency)).ids)
        start = time.perf_counter()
        code, _ = await api.get("/jobs?status=queued&limit=1")
        list_ms = (time.perf_counter() - start) * 1000
    after = memory_mb(server.api.pid)
    return {
        "jobs": n,
        "accepted": accepted,
        "used_batch_endpoint": 1 if batch else 0,
        "submit_s": meter.wall,
        "submit_jobs_per_s": accepted / meter.wall,
        **meter.figures("gen"),
        "rss_idle_mb": before["rss_mb"],
        "rss_mb": after["rss_mb"],
        "hwm_mb": after["hwm_mb"],
        "list_queued_ms": list_ms if code == 200 else -1.0,
        "db_mb": _file_mb(server),
    }


def _file_mb(server: Server) -> float:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        path = server.db_path.with_name(server.db_path.name + suffix)
        if path.exists():
            total += path.stat().st_size
    return total / 2**20
