"""The workloads of the performance harness. Each returns a flat dict of figures.

Figures ending in ``_rps`` / ``_per_s`` are rates, ``_ms`` / ``_s`` times, ``_mb`` memory;
``gen_cpu_*`` is the load generator's own CPU (this process) over the measured interval.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks import jobdocs
from benchmarks.loadgen import (
    TERMINAL,
    Api,
    Meter,
    bounded,
    collect_jobs,
    latencies,
    median,
    new_session,
    percentile,
    submit_many,
    ts,
    wait_drained,
    wait_job,
)
from benchmarks.procs import RssSampler, cpu_seconds, memory_mb
from benchmarks.profiling import recording
from benchmarks.servers import Server

Figures = dict[str, Any]
WARMUP_REQUESTS = 64


# --- W0: the ceilings -------------------------------------------------------------------------


async def _aiohttp_burst(url: str, n: int, concurrency: int) -> Meter:
    async with new_session(concurrency) as session:

        async def one(_: int) -> None:
            async with session.get(url) as resp:
                await resp.read()

        await bounded(WARMUP_REQUESTS, concurrency, one)
        with Meter() as meter:
            await bounded(n, concurrency, one)
    return meter


async def _httpx_burst(url: str, n: int, concurrency: int) -> Meter:
    async with httpx.AsyncClient(trust_env=False) as client:

        async def one(_: int) -> None:
            (await client.get(url)).raise_for_status()

        await bounded(WARMUP_REQUESTS, concurrency, one)
        with Meter() as meter:
            await bounded(n, concurrency, one)
    return meter


async def _sequential_rtt(url: str, n: int) -> float:
    """Median seconds of one GET at a time (the idle round trip of the target)."""
    samples: list[float] = []
    async with new_session(1) as session:
        for _ in range(n + 5):
            start = time.perf_counter()
            async with session.get(url) as resp:
                await resp.read()
            samples.append(time.perf_counter() - start)
    return median(samples[5:])


async def w0_ceilings(url: str, n: int, concurrency: int, repeats: int = 3) -> Figures:
    """Plain aiohttp and plain httpx.AsyncClient doing the same ``n`` GETs, no queue.

    An aiohttp burst lasts well under a second, so one busy moment of another process skews
    it: the ceiling is the best of ``repeats`` bursts (the conservative choice for the ratios),
    and ``aiohttp_rps_median`` keeps the typical one. httpx's burst is long: measured once.
    """
    bursts = [await _aiohttp_burst(url, n, concurrency) for _ in range(repeats)]
    fast = min(bursts, key=lambda meter: meter.wall)
    slow = await _httpx_burst(url, n, concurrency)
    rtt = await _sequential_rtt(url, 50)
    return {
        "requests": n,
        "concurrency": concurrency,
        "aiohttp_rps": n / fast.wall,
        "aiohttp_rps_median": median([n / meter.wall for meter in bursts]),
        **fast.figures("aiohttp_gen"),
        "httpx_rps": n / slow.wall,
        **slow.figures("httpx_gen"),
        "ceiling_rps": max(n / fast.wall, n / slow.wall),
        "rtt_ms": rtt * 1000,
    }


# --- W1: single-call jobs through the REST API ------------------------------------------------


async def w1_bulk(
    server: Server,
    url: str,
    n: int,
    concurrency: int,
    timeout: float,
    profile_to: Path | None = None,
) -> Figures:
    """``n`` single-call jobs submitted one request each at ``concurrency``; all figures of W1.

    With ``profile_to``, py-spy samples the API process during the measured interval."""
    doc = jobdocs.single_call(url)
    async with new_session(concurrency + 2) as session:
        api = Api(session, server.base)
        await submit_many(api, doc, concurrency, concurrency)  # warm-up, also waits for a worker
        await wait_drained(api, timeout)
        cpu0 = sum(cpu_seconds(pid) for pid in server.pids())
        with (
            recording(server.api.pid, profile_to),
            RssSampler(server.pids(), 0.25) as rss,
            Meter() as whole,
        ):
            with Meter() as submitting:
                sub = await submit_many(api, doc, n, concurrency)
            drained = await wait_drained(api, timeout, interval=0.02)
        server_cpu = sum(cpu_seconds(pid) for pid in server.pids()) - cpu0
        if not sub.ids:
            raise RuntimeError(f"no job accepted: {sub.errors}")
        jobs = await collect_jobs(api, sub.ids, concurrency)
    lat, created_min, finished_max, statuses = latencies(jobs)
    return {
        "jobs": n,
        "accepted": len(sub.ids),
        "succeeded": statuses.get("succeeded", 0),
        "not_succeeded": n - statuses.get("succeeded", 0),
        "submit_rps": sub.rate,
        **submitting.figures("submit_gen"),
        "e2e_jobs_per_s": len(sub.ids) / (finished_max - sub.first_sent),
        "e2e_server_jobs_per_s": len(sub.ids) / (finished_max - created_min),
        "e2e_wall_s": drained - sub.first_sent,
        "e2e_wall_jobs_per_s": len(sub.ids) / (drained - sub.first_sent),
        "latency_p50_ms": percentile(lat, 50) * 1000,
        "latency_p99_ms": percentile(lat, 99) * 1000,
        **whole.figures("gen"),
        "server_cpu_ms_per_job": server_cpu / n * 1000,
        "peak_rss_sampled_mb": rss.peak_mb,
        **_memory(server),
    }


async def w1_polled(
    server: Server, url: str, n: int, concurrency: int, timeout: float, interval: float = 0.01
) -> Figures:
    """W1 as REST clients run it: ``concurrency`` lanes, each submitting a job and polling its
    ``GET /jobs/{id}`` every ``interval`` seconds until it ends, then the next job.

    ``e2e_jobs_per_s`` is jobs / (last seen finished - first ``POST``). Unlike W1, the lanes
    wait for their jobs, so the figure includes each job's latency as a client sees it."""
    payload = orjson.dumps(jobdocs.single_call(url))
    async with new_session(concurrency + 2) as session:
        api = Api(session, server.base)
        await submit_many(api, jobdocs.single_call(url), concurrency, concurrency)
        await wait_drained(api, timeout)
        cpu0 = sum(cpu_seconds(pid) for pid in server.pids())
        polls = 0
        done = 0

        async def one(_: int) -> None:
            nonlocal polls, done
            code, body = await api.post("/jobs", payload)
            if code != 201:
                raise RuntimeError(f"POST /jobs answered {code}: {str(body)[:300]}")
            job_id = body["job_id"]
            while True:
                await asyncio.sleep(interval)
                polls += 1
                code, job = await api.get(f"/jobs/{job_id}")
                if code == 200 and isinstance(job, dict) and job.get("status") in TERMINAL:
                    done += 1
                    return

        with Meter() as whole:
            await asyncio.wait_for(bounded(n, concurrency, one), timeout)
        server_cpu = sum(cpu_seconds(pid) for pid in server.pids()) - cpu0
    return {
        "jobs": n,
        "finished": done,
        "poll_interval_ms": interval * 1000,
        "polls_per_job": polls / max(done, 1),
        "e2e_jobs_per_s": done / whole.wall,
        "server_cpu_ms_per_job": server_cpu / n * 1000,
        **whole.figures("gen"),
    }


def _memory(server: Server) -> Figures:
    out = {"api_hwm_mb": memory_mb(server.api.pid)["hwm_mb"]}
    if server.worker is not None:
        out["worker_hwm_mb"] = memory_mb(server.worker.pid)["hwm_mb"]
    return out


async def idle_latency(server: Server, url: str, samples: int) -> Figures:
    """One job at a time: submit, then poll ``GET /jobs/{id}`` every 1 ms until it ends.

    Besides the two latencies, the medians of its parts: the ``POST`` round trip
    (``idle_submit_ms``), ``started_at - created_at`` (``idle_wait_ms``: wake-up and claim)
    and ``finished_at - started_at`` (``idle_run_ms``: the call and recording its result).
    """
    payload = orjson.dumps(jobdocs.single_call(url))
    parts: dict[str, list[float]] = {k: [] for k in ("polled", "server", "submit", "wait", "run")}
    async with new_session(4) as session:
        api = Api(session, server.base)
        for _ in range(samples):
            start = time.perf_counter()
            code, body = await api.post("/jobs", payload)
            parts["submit"].append(time.perf_counter() - start)
            if code != 201:
                raise RuntimeError(f"POST /jobs answered {code}: {str(body)[:300]}")
            job = await wait_job(api, body["job_id"], 0.001, 30)
            parts["polled"].append(time.perf_counter() - start)
            _split(job, parts)
            await asyncio.sleep(0.01)
    return {
        "idle_samples": samples,
        "idle_latency_polled_ms": median(parts["polled"]) * 1000,
        "idle_latency_server_ms": median(parts["server"]) * 1000,
        **{f"idle_{key}_ms": median(parts[key]) * 1000 for key in ("submit", "wait", "run")},
    }


def _split(job: dict[str, Any], parts: dict[str, list[float]]) -> None:
    keys = ("created_at", "started_at", "finished_at")
    created, started, finished = (ts(job.get(key)) for key in keys)
    if created is None or finished is None:
        return
    parts["server"].append(finished - created)
    if started is not None:
        parts["wait"].append(started - created)
        parts["run"].append(finished - started)


# --- W2: one 1 -> n-2 -> 1 DAG ----------------------------------------------------------------


async def w2_dag(server: Server, url: str, n_tasks: int, w0: Figures, timeout: float) -> Figures:
    """One fan-out/fan-in job end to end; scheduling time per task beyond the HTTP time.

    ``http_estimate_s = 2 * rtt + (n_tasks - 2) / aiohttp_rps`` (what plain aiohttp at the same
    concurrency needs for the same calls: root, the fan-out layer, sink), and
    ``overhead_ms_per_task = (e2e_server_s - http_estimate_s) / n_tasks * 1000``.
    Run on a server whose earlier jobs have all ended (the end is seen when nothing is queued
    or running).
    """
    return await w2_shape(server, url, "wide", n_tasks, w0, timeout)


async def w2_shape(
    server: Server, url: str, shape: str, n_tasks: int, w0: Figures, timeout: float
) -> Figures:
    """W2 for a ``wide`` job (root -> n-2 -> sink) or a ``chain`` of ``n_tasks``, whose HTTP
    estimate is ``n_tasks * rtt`` (one call at a time)."""
    if shape == "chain":
        doc = jobdocs.chain(url, n_tasks)
        http_estimate = n_tasks * w0["rtt_ms"] / 1000
    else:
        doc = jobdocs.fan_out_fan_in(url, n_tasks)
        http_estimate = 2 * w0["rtt_ms"] / 1000 + (n_tasks - 2) / w0["aiohttp_rps"]
    payload = orjson.dumps(doc)
    async with new_session(4) as session:
        api = Api(session, server.base)
        cpu0 = cpu_seconds(server.api.pid)
        start = time.perf_counter()
        code, body = await api.post("/jobs", payload)
        posted = time.perf_counter() - start
        if code != 201:
            raise RuntimeError(f"POST /jobs (DAG) answered {code}: {str(body)[:300]}")
        # A 1,000-task job's detail is heavy: watch the cheap list queries, read it once.
        await wait_drained(api, timeout, interval=0.02)
        wall = time.perf_counter() - start
        server_cpu = cpu_seconds(server.api.pid) - cpu0
        job = await wait_job(api, body["job_id"], 0.05, 30)
    e2e = ts(job["finished_at"]) - ts(job["created_at"])  # type: ignore[operator]
    return {
        "tasks": n_tasks,
        "status_ok": 1 if job.get("status") == "succeeded" else 0,
        "submit_ms": posted * 1000,
        "e2e_server_s": e2e,
        "e2e_wall_s": wall,
        "http_estimate_s": http_estimate,
        "overhead_ms_per_task": (e2e - http_estimate) / n_tasks * 1000,
        "server_cpu_ms_per_task": server_cpu / n_tasks * 1000,
    }


# --- W3: creation-time validation of a large DAG ----------------------------------------------


def w3_in_process(url: str, n_tasks: int) -> Figures:
    """``engine.jobs.validation.validate_job`` on a generated DAG, timed apart from parsing.

    A document the validator rejects is still timed; its error count is reported.
    """
    from engine.errors import JobInvalid
    from engine.jobs.validation import validate_job
    from schemas.jobs import parse_job_document

    doc, generator = jobdocs.large_validation_doc(url, n_tasks)
    with Meter() as parsing:
        spec = parse_job_document(doc)
    errors, warnings = 0, 0
    with Meter() as validating:
        try:
            warnings = len(validate_job(spec, masters={}).warnings)
        except JobInvalid as exc:
            errors, warnings = len(exc.errors), len(exc.warnings)
    return {
        "tasks": len(spec.tasks),
        "generator": generator,
        "parse_s": parsing.wall,
        "validate_s": validating.wall,
        "total_s": parsing.wall + validating.wall,
        "errors": errors,
        "warnings": warnings,
    }


async def w3_http(server: Server, url: str, n_tasks: int) -> Figures:
    """The same document through ``POST /api/v1/jobs/validate`` (creates nothing)."""
    doc, _ = jobdocs.large_validation_doc(url, n_tasks)
    payload = orjson.dumps(doc)
    async with new_session(2) as session:
        api = Api(session, server.base)
        start = time.perf_counter()
        code, body = await api.post("/jobs/validate", payload)
        elapsed = time.perf_counter() - start
    if code not in (200, 422):
        raise RuntimeError(f"POST /jobs/validate answered {code}: {str(body)[:300]}")
    return {
        "http_status": code,
        "http_body_kb": len(payload) / 1024,
        "http_validate_s": elapsed,
        "http_valid": 1 if code == 200 else 0,
    }
