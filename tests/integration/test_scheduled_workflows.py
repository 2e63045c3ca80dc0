"""Schedules that start a stored workflow definition, on a real SQLite file and a real local
target: checked at creation, one job per tick with the tick's time in its params.

Ticks are fired with an explicit ``now`` (``Engine.fire_schedules``); nothing sleeps.
tests/pg/test_scheduled_workflows_on_postgres.py runs this module again on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import httpx

from engine import Engine
from tests.integration.target_server import TargetServer
from tests.integration.test_schedules import count_jobs, epoch
from tests.support.store import store_of
from tests.support.waiting import job_ends

REPORT_SCHEMA = {
    "type": "object",
    "properties": {
        "day": {"type": "string"},
        "region": {"type": "string", "enum": ["eu", "us"]},
    },
    "required": ["day"],
}


def report(target: TargetServer) -> dict[str, Any]:
    return {
        "params_schema": REPORT_SCHEMA,
        "params": {"region": "eu"},
        "tasks": [
            {
                "name": "build",
                "url": target.url("/echo"),
                "params": {"day": "{{ params.day }}", "region": "{{ params.region }}"},
            }
        ],
    }


def scheduled(**workflow: Any) -> dict[str, Any]:
    return {
        "name": "daily-report",
        "cron": "0 6 * * *",
        "timezone": "Europe/Berlin",
        "workflow": {
            "name": "report",
            "params": {"day": "{{ schedule.fire_time }}"},
            **workflow,
        },
    }


async def put_report(client: httpx.AsyncClient, target: TargetServer) -> None:
    answer = await client.put("/api/v1/workflows/report", json=report(target))
    assert answer.status_code in (200, 201), answer.text


def errors(response: httpx.Response) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return {(e["code"], e["location"]) for e in response.json()["detail"]["errors"]}


async def test_an_unknown_definition_or_version_is_refused_at_its_field(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    response = await client.post("/api/v1/schedules", json=scheduled())
    assert errors(response) == {("unknown_workflow", "/workflow/name")}
    await put_report(client, target_server)
    response = await client.post("/api/v1/schedules", json=scheduled(version=7))
    assert errors(response) == {("unknown_workflow_version", "/workflow/version")}
    assert (await client.get("/api/v1/schedules")).json()["items"] == []


async def test_params_outside_the_params_schema_are_refused_under_workflow_params(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    await put_report(client, target_server)
    doc = scheduled()
    doc["workflow"]["params"] = {"region": "mars"}
    response = await client.post("/api/v1/schedules", json=doc)
    assert errors(response) == {
        ("invalid_params", "/workflow/params"),  # `day` is required
        ("invalid_params", "/workflow/params/region"),
    }
    doc["workflow"]["params"] = {"day": "{{ schedule.fire_tim }}"}
    response = await client.post("/api/v1/schedules", json=doc)
    assert errors(response) == {("template_error", "/workflow/params/day")}

    created = (await client.post("/api/v1/schedules", json=scheduled())).json()
    patched = await client.patch(
        f"/api/v1/schedules/{created['id']}",
        json={"workflow": {"name": "report", "params": {"day": 1}}},
    )
    assert errors(patched) == {("invalid_params", "/workflow/params/day")}


async def test_a_tick_starts_the_definition_once_with_the_fire_time(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    await put_report(client, target_server)
    response = await client.post("/api/v1/schedules", json=scheduled())
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["workflow"] == {
        "name": "report",
        "version": None,
        "params": {"day": "{{ schedule.fire_time }}"},
    }
    tick = epoch(created["next_fire_at"])
    assert await engine.fire_schedules(now=tick + 1) == 1
    assert await engine.fire_schedules(now=tick + 1) == 0  # the same tick: no second job
    assert await count_jobs(engine) == 1

    (fire,) = (await client.get("/api/v1/schedules/daily-report")).json()["recent"]
    assert fire["outcome"] == "fired"
    await engine.run_worker(burst=True)
    job = await job_ends(engine, fire["job_id"])
    assert job["status"] == "succeeded"
    assert job["workflow"] == {"name": "report", "version": 1}
    assert job["schedule"] == {
        "id": created["id"],
        "name": "daily-report",
        "fire_time": created["next_fire_at"],
    }
    (call,) = target_server.requests
    assert call.query_values("day") == [created["next_fire_at"]]
    assert call.query_values("region") == ["eu"]  # the definition's default


async def test_an_unpinned_schedule_starts_the_latest_version_at_the_tick(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    await put_report(client, target_server)
    pinned = {**scheduled(version=1), "name": "pinned"}
    assert (await client.post("/api/v1/schedules", json=pinned)).status_code == 201
    created = (await client.post("/api/v1/schedules", json=scheduled())).json()
    newer = {**report(target_server), "tags": ["v2"]}
    assert (await client.put("/api/v1/workflows/report", json=newer)).status_code == 201

    assert await engine.fire_schedules(now=epoch(created["next_fire_at"]) + 1) == 2
    versions = {}
    for name in ("pinned", "daily-report"):
        (fire,) = (await client.get(f"/api/v1/schedules/{name}")).json()["recent"]
        versions[name] = (await engine.get_job(fire["job_id"]))["workflow"]["version"]
    assert versions == {"pinned": 1, "daily-report": 2}


async def test_the_job_of_a_tick_belongs_to_the_schedules_owner(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    await put_report(client, target_server)
    fields = {**scheduled(), "overlap": "allow", "catch_up": "none", "enabled": True}
    created = await engine.create_schedule(fields, owner="alice")
    assert await engine.fire_schedules(now=epoch(created["next_fire_at"]) + 1) == 1
    (fire,) = (await engine.get_schedule("daily-report", owner="alice"))["recent"]
    job = await engine.get_job(fire["job_id"], owner="alice")
    assert job["workflow"]["name"] == "report"
    assert (await client.get(f"/api/v1/jobs/{fire['job_id']}")).status_code == 200


async def test_a_definition_in_use_by_a_schedule_cannot_be_deleted(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    await put_report(client, target_server)
    assert (await client.post("/api/v1/schedules", json=scheduled())).status_code == 201
    refused = await client.delete("/api/v1/workflows/report")
    assert refused.status_code == 409, refused.text
    assert "daily-report" in refused.json()["detail"]["message"]
    assert (await client.delete("/api/v1/schedules/daily-report")).status_code == 204
    assert (await client.delete("/api/v1/workflows/report")).status_code == 204


async def test_a_tick_whose_params_the_latest_version_refuses_is_recorded_failed(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    await put_report(client, target_server)
    created = (await client.post("/api/v1/schedules", json=scheduled())).json()
    stricter = report(target_server)
    stricter["params_schema"] = {**REPORT_SCHEMA, "required": ["day", "owner"]}
    assert (await client.put("/api/v1/workflows/report", json=stricter)).status_code == 201

    assert await engine.fire_schedules(now=epoch(created["next_fire_at"]) + 1) == 0
    (fire,) = (await client.get("/api/v1/schedules/daily-report")).json()["recent"]
    assert fire["outcome"] == "failed" and fire["job_id"] is None
    assert "/workflow/params: params: 'owner' is a required property" in fire["detail"]
    assert await count_jobs(engine) == 0


async def test_a_tick_already_handled_elsewhere_starts_no_second_job(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    await put_report(client, target_server)
    created = (await client.post("/api/v1/schedules", json=scheduled())).json()
    tick = epoch(created["next_fire_at"])
    assert await engine.fire_schedules(now=tick + 1) == 1
    # as a second process that read the schedule before the first one advanced it
    await store_of(engine).update_schedule(created["id"], {"next_fire_at": tick})
    assert await engine.fire_schedules(now=tick + 1) == 0
    assert await count_jobs(engine) == 1
    (fire,) = (await client.get("/api/v1/schedules/daily-report")).json()["recent"]
    assert fire["fire_time"] == created["next_fire_at"] and fire["outcome"] == "fired"
