"""Cron schedules over REST and in the engine, on a real SQLite file and a real local target.

Ticks are fired with an explicit ``now`` (``Engine.fire_schedules``), so nothing here sleeps
or waits for a wall-clock tick; the multi-process test in test_schedules_processes.py runs the
real scheduler loops.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from engine import Engine, EngineConfig, NotFound, Unavailable
from engine.store.tables import jobs, schedule_fires
from tests.integration.target_server import TargetServer
from tests.support.store import store_of
from tests.support.waiting import job_ends, until


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def schedule(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": "nightly",
        "cron": "*/5 * * * *",
        "timezone": "Europe/Berlin",
        "job": {"method": "POST", "url": url, "body": {"at": "{{ schedule.fire_time }}"}},
        **fields,
    }


async def create(client: httpx.AsyncClient, doc: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/schedules", json=doc)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def count_jobs(engine: Engine) -> int:
    async with store_of(engine).read() as conn:
        return int((await conn.execute(select(func.count()).select_from(jobs))).scalar_one())


# --- CRUD ------------------------------------------------------------------------------------


async def test_create_list_get_patch_delete(client: httpx.AsyncClient) -> None:
    created = await create(client, schedule("http://127.0.0.1:9/x"))
    assert created["id"].startswith("sch_")
    assert created["overlap"] == "allow" and created["catch_up"] == "none"
    upcoming = [epoch(t) for t in created["upcoming"]]
    assert len(upcoming) == 5
    assert all(b - a == 300 for a, b in itertools.pairwise(upcoming))
    assert created["next_fire_at"] == created["upcoming"][0]
    assert created["recent"] == []

    listed = (await client.get("/api/v1/schedules")).json()["items"]
    assert [(s["name"], s["next_fire_at"]) for s in listed] == [
        ("nightly", created["next_fire_at"])
    ]
    by_name = (await client.get("/api/v1/schedules/nightly")).json()
    by_id = (await client.get(f"/api/v1/schedules/{created['id']}")).json()
    assert by_name == by_id

    patched = await client.patch(
        "/api/v1/schedules/nightly", json={"enabled": False, "overlap": "skip"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["enabled"] is False
    assert patched.json()["next_fire_at"] is None and patched.json()["upcoming"] == []
    assert patched.json()["overlap"] == "skip"

    again = await client.patch(
        "/api/v1/schedules/nightly", json={"enabled": True, "cron": "0 3 * * *"}
    )
    assert again.status_code == 200
    assert {t[11:16] for t in again.json()["upcoming"]} <= {"01:00", "02:00"}  # 03:00 Berlin

    assert (await client.delete("/api/v1/schedules/nightly")).status_code == 204
    assert (await client.get("/api/v1/schedules/nightly")).status_code == 404
    assert (await client.delete("/api/v1/schedules/nightly")).status_code == 404


async def test_a_second_schedule_with_the_same_name_is_a_conflict(
    client: httpx.AsyncClient,
) -> None:
    await create(client, schedule("http://127.0.0.1:9/x"))
    response = await client.post("/api/v1/schedules", json=schedule("http://127.0.0.1:9/y"))
    assert response.status_code == 409


async def test_the_job_is_validated_at_creation_with_locations_under_job(
    client: httpx.AsyncClient,
) -> None:
    doc = schedule("http://127.0.0.1:9/x")
    doc["job"] = {
        "tasks": [
            {"name": "a", "url": "http://127.0.0.1:9/a", "depends_on": ["missing"]},
            {"name": "b", "url": "http://127.0.0.1:9/{{ schedule.fire_tim }}", "bogus": 1},
        ]
    }
    response = await client.post("/api/v1/schedules", json=doc)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]["errors"]
    assert {e["location"] for e in errors} == {"/job/tasks/1/bogus"}
    doc["job"]["tasks"][1].pop("bogus")
    doc["cron"] = "* * *"
    response = await client.post("/api/v1/schedules", json=doc)
    assert response.status_code == 422
    found = {(e["code"], e["location"]) for e in response.json()["detail"]["errors"]}
    assert found == {
        ("invalid_cron", "/cron"),
        ("unknown_dependency", "/job/tasks/0/depends_on/0"),
        ("unknown_variable", "/job/tasks/1/url"),
    }
    assert (await client.get("/api/v1/schedules")).json()["items"] == []


@pytest.mark.parametrize(
    ("field", "value", "location"),
    [
        ("cron", "*/5 * * *", "/cron"),
        ("cron", "99 * * * *", "/cron"),
        ("timezone", "Mars/X", "/timezone"),
    ],
)
async def test_bad_cron_or_timezone_is_a_422_at_its_field(
    client: httpx.AsyncClient, field: str, value: str, location: str
) -> None:
    response = await client.post(
        "/api/v1/schedules", json=schedule("http://127.0.0.1:9/x", **{field: value})
    )
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]["errors"]
    assert (error["code"], error["location"]) == ("invalid_cron", location)


async def test_a_schedule_needs_exactly_one_of_job_and_workflow(client: httpx.AsyncClient) -> None:
    doc = schedule("http://127.0.0.1:9/x")
    doc.pop("job")
    assert (await client.post("/api/v1/schedules", json=doc)).status_code == 422
    doc["job"] = {"url": "http://127.0.0.1:9/x"}
    doc["workflow"] = {"name": "enrich", "params": {"q": "cats"}}
    assert (await client.post("/api/v1/schedules", json=doc)).status_code == 422


async def test_a_plain_job_that_reads_schedule_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/jobs", json={"url": "http://127.0.0.1:9/{{ schedule.fire_time }}"}
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]["errors"]
    assert (error["code"], error["location"]) == ("unknown_variable", "/url")


# --- ticks -----------------------------------------------------------------------------------


async def test_a_tick_creates_one_job_that_renders_the_fire_time(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    created = await create(client, schedule(target_server.url("/echo")))
    tick = epoch(created["next_fire_at"])
    assert await engine.fire_schedules(now=tick - 1) == 0
    assert await engine.fire_schedules(now=tick + 2) == 1
    assert await engine.fire_schedules(now=tick + 3) == 0  # handled already

    detail = (await client.get("/api/v1/schedules/nightly")).json()
    (fire,) = detail["recent"]
    assert fire["fire_time"] == created["next_fire_at"] and fire["outcome"] == "fired"
    assert epoch(detail["next_fire_at"]) == tick + 300

    await engine.run_worker(burst=True)
    job = await job_ends(engine, fire["job_id"])
    assert job["status"] == "succeeded" and job["name"] == "nightly"
    assert job["schedule"] == {
        "id": created["id"],
        "name": "nightly",
        "fire_time": created["next_fire_at"],
    }
    (request,) = target_server.requests
    assert orjson.loads(request.body) == {"at": created["next_fire_at"]}


async def test_two_engines_firing_the_same_tick_create_one_job(
    client: httpx.AsyncClient, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jobqueue.schedules")
    created = await create(client, schedule("http://127.0.0.1:9/x", cron="* * * * * *"))
    tick = epoch(created["next_fire_at"])
    others = [await Engine.open(engine.config) for _ in range(3)]
    try:
        made = await asyncio.gather(*(e.fire_schedules(now=tick + 5) for e in [engine, *others]))
    finally:
        for other in others:
            await other.close()
    assert sum(made) == 6  # six ticks: tick .. tick + 5, each once
    async with store_of(engine).read() as conn:
        rows = (await conn.execute(select(schedule_fires.c.fire_time))).scalars().all()
    assert sorted(rows) == [tick + k for k in range(6)]
    assert await count_jobs(engine) == 6
    lost = [r for r in caplog.records if "handled by another process" in r.getMessage()]
    assert lost, "the engines raced for the same ticks (the unique row decided)"


async def test_patch_disable_stops_firing(client: httpx.AsyncClient, engine: Engine) -> None:
    created = await create(client, schedule("http://127.0.0.1:9/x"))
    tick = epoch(created["next_fire_at"])
    await client.patch("/api/v1/schedules/nightly", json={"enabled": False})
    assert await engine.fire_schedules(now=tick + 1) == 0
    assert await count_jobs(engine) == 0


async def test_overlap_skip_records_the_tick_while_the_previous_job_runs(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    created = await create(client, schedule("http://127.0.0.1:9/x", overlap="skip"))
    tick = epoch(created["next_fire_at"])
    assert await engine.fire_schedules(now=tick) == 1  # no worker: the job stays queued
    assert await engine.fire_schedules(now=tick + 300) == 0
    recent = (await client.get("/api/v1/schedules/nightly")).json()["recent"]
    assert [f["outcome"] for f in recent] == ["skipped", "fired"]
    assert recent[1]["job_id"] in recent[0]["detail"]


async def test_overlap_cancel_previous_cancels_then_creates(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    created = await create(client, schedule("http://127.0.0.1:9/x", overlap="cancel_previous"))
    tick = epoch(created["next_fire_at"])
    assert await engine.fire_schedules(now=tick) == 1
    assert await engine.fire_schedules(now=tick + 300) == 1
    second, first = (await client.get("/api/v1/schedules/nightly")).json()["recent"]
    assert (await engine.get_job(first["job_id"]))["status"] == "canceled"
    assert (await engine.get_job(second["job_id"]))["status"] == "queued"


@pytest.mark.parametrize(("catch_up", "jobs_made"), [("none", 1), ("latest", 2), ("all", 13)])
async def test_catch_up_after_an_hour_down(
    client: httpx.AsyncClient, engine: Engine, catch_up: str, jobs_made: int
) -> None:
    created = await create(client, schedule("http://127.0.0.1:9/x", catch_up=catch_up))
    tick = epoch(created["next_fire_at"])
    # down from before the first tick until 10 s after the 13th (an hour later)
    assert await engine.fire_schedules(now=tick + 3600 + 10) == jobs_made
    assert await count_jobs(engine) == jobs_made


# --- the scheduler loop ------------------------------------------------------------------------


async def test_the_scheduler_loop_fires_a_due_tick_in_a_running_worker(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    await create(client, schedule("http://127.0.0.1:9/x", cron="* * * * * *"))
    engine.start_worker()

    async def fired() -> list[Any]:
        return list((await client.get("/api/v1/schedules/nightly")).json()["recent"])

    (first, *_) = await until(fired, timeout=10)
    assert first["outcome"] == "fired"


async def test_the_scheduler_survives_a_database_outage(
    client: httpx.AsyncClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create(client, schedule("http://127.0.0.1:9/x", cron="* * * * * *"))
    store = store_of(engine)
    real = store.due_schedules
    outages = 0

    async def flaky(now: float, *, limit: int) -> list[Any]:
        nonlocal outages
        if outages < 3:
            outages += 1
            raise Unavailable("the database did not answer")
        return await real(now, limit=limit)

    monkeypatch.setattr(store, "due_schedules", flaky)
    engine.start_worker()

    async def fired() -> bool:
        return bool((await client.get("/api/v1/schedules/nightly")).json()["recent"])

    await until(fired, timeout=15)
    assert outages == 3 and engine.health()["failed_workers"] == []


async def test_a_scheduler_that_stops_on_a_bug_fails_healthz(
    client: httpx.AsyncClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(now: float, *, limit: int) -> list[Any]:
        raise RuntimeError("a bug in the scheduler")

    monkeypatch.setattr(store_of(engine), "due_schedules", broken)
    engine.start_worker()

    async def sick() -> httpx.Response | None:
        response = await client.get("/healthz")
        return response if response.status_code == 503 else None

    answer = (await until(sick, timeout=10)).json()
    (failure,) = answer["failed_workers"]
    assert failure.startswith("jobqueue-scheduler: ") and "a bug in the scheduler" in failure


async def test_no_scheduler_when_it_is_turned_off(config: EngineConfig) -> None:
    off = await Engine.open(replace(config, scheduler=False))
    try:
        assert off.worker()._scheduler is None
        assert off.worker(only_jobs=frozenset({"j_x"}))._scheduler is None
    finally:
        await off.close()


async def test_a_stored_schedule_that_no_longer_parses_is_disabled_not_fatal(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    created = await create(client, schedule("http://127.0.0.1:9/x"))
    tick = epoch(created["next_fire_at"])
    # as after a tzdata update that dropped the zone
    await store_of(engine).update_schedule("nightly", {"timezone": "Gone/Zone"})
    assert await engine.fire_schedules(now=tick + 1) == 0
    stored = (await client.get("/api/v1/schedules/nightly")).json()
    assert stored["enabled"] is False and stored["next_fire_at"] is None


async def test_the_job_of_a_tick_belongs_to_the_schedules_owner(
    engine: Engine, target_server: TargetServer
) -> None:
    created = await engine.create_schedule(
        schedule(
            target_server.url("/echo"), name="owned", overlap="allow", catch_up="none", enabled=True
        ),
        owner="alice",
    )
    tick = epoch(created["next_fire_at"])
    assert await engine.fire_schedules(now=tick + 1) == 1
    (fire,) = (await engine.get_schedule("owned", owner="alice"))["recent"]
    assert (await engine.get_job(fire["job_id"], owner="alice"))["job_id"] == fire["job_id"]
    with pytest.raises(NotFound):
        await engine.get_job(fire["job_id"], owner="bob")
    with pytest.raises(NotFound):
        await engine.get_schedule("owned", owner="bob")
