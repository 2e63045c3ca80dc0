"""The load generator: aiohttp only (httpx's default pool would measure itself).

It submits jobs over the REST API at a fixed concurrency, watches the queue drain with cheap
list queries (never one poll per job during a run), and afterwards reads each job's server
timestamps by paging ``GET /api/v1/jobs``. :class:`Meter` reports the generator's own CPU time
next to every figure, so a saturated generator is visible.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import orjson

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
JSON_HEADERS = {"Content-Type": "application/json"}


class Meter:
    """Wall and generator-CPU time of a block: ``with Meter() as m: ...; m.wall, m.cpu``."""

    def __enter__(self) -> Meter:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall0
        self.cpu = time.process_time() - self._cpu0

    def figures(self, prefix: str = "gen") -> dict[str, float]:
        """``<prefix>_cpu_s`` and ``<prefix>_cpu_util`` (1.0 = the generator used a whole core)."""
        return {f"{prefix}_cpu_s": self.cpu, f"{prefix}_cpu_util": self.cpu / max(self.wall, 1e-9)}


def new_session(concurrency: int) -> aiohttp.ClientSession:
    """One shared session with a connection pool sized for ``concurrency``."""
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


async def bounded(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> None:
    """Call ``one(i)`` for i in range(n) with at most ``concurrency`` calls in flight."""
    counter = iter(range(n))

    async def lane() -> None:
        for i in counter:
            await one(i)

    await asyncio.gather(*(lane() for _ in range(min(concurrency, n))))


@dataclass
class Api:
    """The JobQueue REST API at ``base`` (``http://127.0.0.1:P``), through one aiohttp session."""

    session: aiohttp.ClientSession
    base: str

    async def post(self, path: str, payload: bytes) -> tuple[int, Any]:
        url = f"{self.base}/api/v1{path}"
        async with self.session.post(url, data=payload, headers=JSON_HEADERS) as resp:
            return resp.status, _decode(await resp.read())

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(f"{self.base}/api/v1{path}") as resp:
            return resp.status, _decode(await resp.read())


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw[:500].decode(errors="replace")


def ts(value: str | None) -> float | None:
    """An ISO 8601 timestamp (``...Z``) as epoch seconds."""
    return datetime.fromisoformat(value).timestamp() if value else None


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- submitting ------------------------------------------------------------------------------


@dataclass
class Submitted:
    """What a burst of submissions returned."""

    ids: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    first_sent: float = 0.0  #: epoch seconds when the first POST left
    last_answered: float = 0.0  #: epoch seconds when the last answer arrived
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.ids) / max(self.last_answered - self.first_sent, 1e-9)


async def submit_many(
    api: Api, doc: dict[str, Any], n: int, concurrency: int, into: list[str] | None = None
) -> Submitted:
    """POST ``doc`` to /jobs ``n`` times at ``concurrency``; one request per job. The ids are
    appended to ``into`` as they arrive when it is given (a poller can follow them)."""
    payload = orjson.dumps(doc)
    out = Submitted(first_sent=time.time())
    if into is not None:
        out.ids = into

    async def one(_: int) -> None:
        status, body = await api.post("/jobs", payload)
        out.statuses[status] += 1
        if status == 201 and isinstance(body, dict) and "job_id" in body:
            out.ids.append(body["job_id"])
        elif len(out.errors) < 5:
            out.errors.append(f"{status}: {str(body)[:300]}")

    await bounded(n, concurrency, one)
    out.last_answered = time.time()
    return out


# --- watching the queue drain ----------------------------------------------------------------


async def _any_with_status(api: Api, status: str) -> bool:
    code, body = await api.get(f"/jobs?status={status}&limit=1")
    if code != 200 or not isinstance(body, dict):
        raise RuntimeError(f"GET /jobs?status={status} answered {code}: {str(body)[:300]}")
    return bool(body.get("items"))


async def wait_drained(api: Api, timeout: float, interval: float = 0.05) -> float:
    """Wait until no job is queued or running; returns the epoch time it was seen drained."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not await _any_with_status(api, "queued") and not await _any_with_status(api, "running"):
            return time.time()
        await asyncio.sleep(interval)
    raise TimeoutError(f"queue not drained after {timeout:.0f}s")


# --- reading server timestamps afterwards ----------------------------------------------------


async def list_jobs(api: Api, status: str, limit: int = 500) -> list[dict[str, Any]]:
    """Every job with ``status``, by following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = f"/jobs?status={status}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        code, body = await api.get(query)
        if code == 422 and limit > 100:
            limit = 100
            continue
        if code != 200 or not isinstance(body, dict):
            raise RuntimeError(f"GET {query} answered {code}: {str(body)[:300]}")
        items.extend(body.get("items") or [])
        cursor = body.get("next_cursor")
        if not cursor:
            return items


async def job_details(api: Api, ids: list[str], concurrency: int) -> dict[str, dict[str, Any]]:
    """``GET /jobs/{id}`` for each id (after a run only)."""
    found: dict[str, dict[str, Any]] = {}

    async def one(i: int) -> None:
        code, body = await api.get(f"/jobs/{ids[i]}")
        if code == 200 and isinstance(body, dict):
            found[ids[i]] = body

    await bounded(len(ids), concurrency, one)
    return found


async def collect_jobs(api: Api, ids: list[str], concurrency: int) -> dict[str, dict[str, Any]]:
    """Status and timestamps of ``ids``: paged lists first, single GETs for whatever is missing."""
    wanted = set(ids)
    found: dict[str, dict[str, Any]] = {}
    for status in sorted(TERMINAL):
        for item in await list_jobs(api, status):
            job_id = item.get("job_id")
            if job_id in wanted and item.get("finished_at") and item.get("created_at"):
                found[job_id] = item
    missing = [job_id for job_id in ids if job_id not in found]
    found.update(await job_details(api, missing, concurrency))
    return found


def latencies(jobs: dict[str, dict[str, Any]]) -> tuple[list[float], float, float, Counter[str]]:
    """Per-job finished-created seconds, the earliest created, the latest finished, statuses."""
    lat: list[float] = []
    created_min, finished_max = float("inf"), 0.0
    statuses: Counter[str] = Counter()
    for job in jobs.values():
        statuses[str(job.get("status"))] += 1
        created, finished = ts(job.get("created_at")), ts(job.get("finished_at"))
        if created is None or finished is None:
            continue
        lat.append(finished - created)
        created_min = min(created_min, created)
        finished_max = max(finished_max, finished)
    return lat, created_min, finished_max, statuses


async def wait_job(api: Api, job_id: str, interval: float, timeout: float) -> dict[str, Any]:
    """Poll ``GET /jobs/{id}`` every ``interval`` seconds until the job ends; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = await api.get(f"/jobs/{job_id}")
        if code == 200 and isinstance(body, dict) and body.get("status") in TERMINAL:
            return body
        await asyncio.sleep(interval)
    raise TimeoutError(f"job {job_id} not finished after {timeout:.0f}s")
