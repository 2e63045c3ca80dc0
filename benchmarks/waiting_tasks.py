"""``python -m benchmarks.waiting_tasks [--tasks N]``: what holding N callback tasks in
``waiting`` costs, and how fast their callbacks finish them.

One process: an engine on a fresh SQLite file (``synchronous=FULL``, the default) with a worker
of concurrency 32, and a small aiohttp target on 127.0.0.1 in the same event loop that answers
202 and keeps the callback URL it was handed (as a remote system would). It reports the time to
bring N single-call callback jobs to ``waiting``, the process's RSS before and after (the
target's list of N URLs is included, about 100 bytes each), the rows and bytes in the database,
one reaper sweep while they wait, and the callbacks completed per second through
``Engine.complete_callback`` (what ``POST /callbacks/{token}`` calls).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from engine import Engine, EngineConfig
from engine.service import BatchItem
from engine.store.tables import attempts, callbacks, tasks
from schemas.jobs import parse_job_document


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _target(tokens: list[str]) -> tuple[web.AppRunner, str]:
    async def work(request: web.Request) -> web.Response:
        body = await request.json()
        tokens.append(body["url"].rsplit("/", 1)[1])
        return web.json_response({"accepted": True}, status=202)

    app = web.Application()
    app.router.add_post("/work", work)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/work"


async def _count(engine: Engine, table: Any) -> int:
    store = engine._store
    async with store.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def measure(n: int, directory: Path) -> dict[str, Any]:
    db = directory / "waiting.db"
    tokens: list[str] = []
    runner, url = await _target(tokens)
    config = EngineConfig(
        db_url=f"sqlite+aiosqlite:///{db}", concurrency=32, allow_private_networks=True
    )
    engine = await Engine.open(config)
    out: dict[str, Any] = {"tasks": n, "rss_before_mb": round(_vm("VmRSS"), 1)}
    try:
        doc = {
            "method": "POST",
            "url": url,
            "body": {"url": "{{ callback.url }}"},
            "callback": {"timeout_sec": 86400},
        }
        spec = parse_job_document(doc)
        start = time.perf_counter()
        for first in range(0, n, 1000):
            items = [BatchItem(spec=spec, single_call=True)] * min(1000, n - first)
            await engine.submit_many(items)
        out["submit_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        await engine.run_worker(burst=True)
        out["to_waiting_s"] = round(time.perf_counter() - start, 2)
        out["waiting"] = await engine._store.waiting_count()
        out["rss_waiting_mb"] = round(_vm("VmRSS"), 1)
        out["hwm_mb"] = round(_vm("VmHWM"), 1)
        out["rows"] = {
            "tasks": await _count(engine, tasks),
            "attempts": await _count(engine, attempts),
            "callbacks": await _count(engine, callbacks),
        }
        size = sum(p.stat().st_size for p in directory.glob("waiting.db*"))
        out["db_mb"] = round(size / 1e6, 1)
        start = time.perf_counter()
        await engine.reap()
        out["reap_sweep_ms"] = round((time.perf_counter() - start) * 1000, 1)
        start = time.perf_counter()
        sem = asyncio.Semaphore(64)

        async def finish(token: str) -> None:
            async with sem:
                await engine.complete_callback(token, status="succeeded", output={"ok": True})

        await asyncio.gather(*(finish(t) for t in tokens))
        took = time.perf_counter() - start
        out["callbacks_per_s"] = round(len(tokens) / took, 1)
        out["waiting_after"] = await engine._store.waiting_count()
    finally:
        await engine.close()
        await runner.cleanup()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jq-waiting-") as tmp:
        result = asyncio.run(measure(args.tasks, Path(tmp)))
    result["pid"] = os.getpid()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
