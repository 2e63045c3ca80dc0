"""The huey application both sides import: SQLite storage with ``synchronous=FULL`` (the file is
named by ``JOBQUEUE_BENCH_HUEY_DB``) and one task, a GET through a shared ``httpx.Client``.
The consumer is ``python -m benchmarks.peers.huey_peer WORKERS`` (thread workers)."""

from __future__ import annotations

import os

import httpx
from huey import SqliteHuey

huey = SqliteHuey(
    "bench", filename=os.environ.get("JOBQUEUE_BENCH_HUEY_DB", "huey-bench.db"), fsync=True
)
_client = httpx.Client(
    trust_env=False, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
)


@huey.task()
def fetch(url: str) -> int:
    return _client.get(url).status_code
