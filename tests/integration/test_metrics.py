"""GET /metrics: Prometheus text with the counters of this process and the queue read now."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from engine import Engine
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.store import store_of
from tests.support.waiting import job_ends


async def _samples(
    client: httpx.AsyncClient,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def _submit(engine: Engine, doc: dict[str, object]) -> str:
    return (await engine.submit(parse_job_document(doc), single_call=True)).job_id


async def test_counters_follow_what_the_worker_did(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    ok = await _submit(running, {"url": target_server.url("/json")})
    bad = await _submit(
        running,
        {
            "url": target_server.url("/status/503"),
            "max_attempts": 2,
            "backoff_strategy": "fixed",
            "backoff_seconds": 0.01,
        },
    )
    assert (await job_ends(running, ok))["status"] == "succeeded"
    assert (await job_ends(running, bad))["status"] == "failed"
    found = await _samples(client)
    assert found[("jobqueue_tasks_finished_total", (("status", "succeeded"),))] == 1
    assert found[("jobqueue_tasks_finished_total", (("status", "failed"),))] == 1
    assert found[("jobqueue_attempts_total", (("outcome", "succeeded"),))] == 1
    assert found[("jobqueue_attempts_total", (("outcome", "failed"),))] == 2
    calls = ("jobqueue_http_call_duration_seconds_count", (("host", "127.0.0.1"),))
    assert found[calls] == 3
    assert found[("jobqueue_workers_alive", ())] == 1


async def test_queue_gauges_and_lease_losses(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    await _submit(engine, {"url": target_server.url("/json")})
    await _submit(engine, {"url": target_server.url("/json")})
    found = await _samples(client)
    assert found[("jobqueue_queue_depth", ())] == 2
    assert found[("jobqueue_oldest_queued_age_seconds", ())] > 0
    assert found[("jobqueue_workers_alive", ())] == 0
    await store_of(engine).claim(worker="gone", limit=1, lease_seconds=1)
    await engine.reap(now=time.time() + 60)
    found = await _samples(client)
    assert found[("jobqueue_lease_losses_total", ())] == 1
    assert found[("jobqueue_attempts_total", (("outcome", "lost"),))] == 1
    assert found[("jobqueue_queue_depth", ())] == 2, "the lost task is queued again"
