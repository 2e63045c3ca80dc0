"""Workflow definitions over the REST API: versions, typed params, runs, filters, deletion.
Real SQLite file, real local HTTP target, the embedded worker."""

from __future__ import annotations

from typing import Any

import httpx

from engine import Engine
from tests.integration.target_server import TargetServer
from tests.support.store import store_of
from tests.support.waiting import api_job_ends

PARAMS_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
    "required": ["query"],
}


def definition(target: TargetServer, **extra: Any) -> dict[str, Any]:
    return {
        "description": "search the echo service",
        "params_schema": PARAMS_SCHEMA,
        "params": {"limit": 5},
        "tasks": [
            {
                "name": "search",
                "url": target.url("/echo"),
                "params": {"q": "{{ params.query }}", "n": "{{ params.limit }}"},
            }
        ],
        **extra,
    }


async def test_a_changed_document_is_a_new_version_and_an_identical_one_is_not(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    first = await client.put("/api/v1/workflows/search", json=definition(target_server))
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1
    same = await client.put("/api/v1/workflows/search", json=definition(target_server))
    assert same.status_code == 200
    assert same.json()["version"] == 1
    changed = await client.put(
        "/api/v1/workflows/search", json=definition(target_server, tags=["v2"])
    )
    assert changed.status_code == 201
    assert changed.json()["version"] == 2
    assert [v["version"] for v in changed.json()["versions"]] == [1, 2]

    listed = (await client.get("/api/v1/workflows")).json()["items"]
    assert [(w["name"], w["version"]) for w in listed] == [("search", 2)]
    latest = (await client.get("/api/v1/workflows/search")).json()
    assert latest["version"] == 2 and latest["document"]["tags"] == ["v2"]
    old = (await client.get("/api/v1/workflows/search/versions/1")).json()
    assert old["version"] == 1 and "tags" not in old["document"]
    assert old["params_schema"] == PARAMS_SCHEMA
    assert (await client.get("/api/v1/workflows/search/versions/3")).status_code == 404
    assert (await client.get("/api/v1/workflows/nothing")).status_code == 404


async def test_a_misspelt_param_is_refused_with_its_location(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    document = definition(target_server)
    document["tasks"][0]["params"]["q"] = "{{ params.qurey }}"
    answer = await client.put("/api/v1/workflows/search", json=document)
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]["errors"]
    assert error["code"] == "unknown_param"
    assert error["location"] == "/tasks/0/params/q"
    assert error["expected"] == ["limit", "query"]
    assert (await client.get("/api/v1/workflows/search")).status_code == 404


async def test_an_invalid_params_schema_and_a_wrong_name_are_refused(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    bad_schema = await client.put(
        "/api/v1/workflows/search", json=definition(target_server, params_schema={"type": 3})
    )
    assert bad_schema.status_code == 422
    assert bad_schema.json()["detail"]["errors"][0]["location"].startswith("/params_schema")
    renamed = await client.put(
        "/api/v1/workflows/search", json=definition(target_server, name="other")
    )
    assert renamed.status_code == 422
    assert renamed.json()["detail"]["errors"][0]["code"] == "name_mismatch"
    unknown_field = await client.put(
        "/api/v1/workflows/search", json=definition(target_server, colour="red")
    )
    assert unknown_field.status_code == 422


async def test_a_run_starts_a_job_of_the_version_it_names(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    await client.put("/api/v1/workflows/search", json=definition(target_server))
    await client.put("/api/v1/workflows/search", json=definition(target_server, tags=["v2"]))
    run = await client.post(
        "/api/v1/workflows/search/runs",
        json={"params": {"query": "cats"}, "version": 1, "tags": ["mine"], "priority": 7},
    )
    assert run.status_code == 201, run.text
    body = run.json()
    assert body["workflow"] == {"name": "search", "version": 1}
    job = await api_job_ends(client, body["job_id"])
    assert job["status"] == "succeeded"
    assert job["workflow"] == {"name": "search", "version": 1}
    assert job["name"] == "search" and job["tags"] == ["mine"] and job["priority"] == 7
    (request,) = target_server.requests
    assert request.query_values("q") == ["cats"] and request.query_values("n") == ["5"]

    latest = await client.post("/api/v1/workflows/search/runs", json={"params": {"query": "x"}})
    assert latest.json()["workflow"] == {"name": "search", "version": 2}
    other = await client.post("/api/v1/jobs", json={"url": target_server.url("/json")})
    listed = (await client.get("/api/v1/jobs", params={"workflow": "search"})).json()["items"]
    ids = {j["job_id"] for j in listed}
    assert ids == {body["job_id"], latest.json()["job_id"]}
    assert other.json()["job_id"] not in ids


async def test_run_params_are_checked_against_the_params_schema(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    await client.put("/api/v1/workflows/search", json=definition(target_server))
    missing = await client.post("/api/v1/workflows/search/runs", json={"params": {"limit": 0}})
    assert missing.status_code == 422
    errors = missing.json()["detail"]["errors"]
    assert {e["code"] for e in errors} == {"invalid_params"}
    assert {e["location"] for e in errors} == {"/params", "/params/limit"}
    assert (await client.get("/api/v1/jobs")).json()["items"] == []
    unknown = await client.post("/api/v1/workflows/nothing/runs", json={})
    assert unknown.status_code == 404


async def test_a_run_honours_idempotency_key(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    await client.put("/api/v1/workflows/search", json=definition(target_server))
    key = {"Idempotency-Key": "nightly-1"}
    run = {"params": {"query": "cats"}}
    first = await client.post("/api/v1/workflows/search/runs", json=run, headers=key)
    again = await client.post("/api/v1/workflows/search/runs", json=run, headers=key)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["workflow"] == {"name": "search", "version": 1}
    other = await client.post(
        "/api/v1/workflows/search/runs", json={"params": {"query": "dogs"}}, headers=key
    )
    assert other.status_code == 422


async def test_a_started_job_keeps_its_version_and_deletion_keeps_jobs(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    await client.put("/api/v1/workflows/search", json=definition(target_server))
    started = await engine.start_workflow(
        "search", {"query": "cats"}, context={"schedule": {"fire_time": "2026-12-02T10:00:00Z"}}
    )
    await client.put("/api/v1/workflows/search", json=definition(target_server, tags=["v2"]))
    assert (await client.delete("/api/v1/workflows/search")).status_code == 204
    assert (await client.get("/api/v1/workflows/search")).status_code == 404
    assert (await client.delete("/api/v1/workflows/search")).status_code == 404
    job = (await client.get(f"/api/v1/jobs/{started.job_id}")).json()
    assert job["workflow"] == {
        "name": "search",
        "version": 1,
        "context": {"schedule": {"fire_time": "2026-12-02T10:00:00Z"}},
    }
    assert job["status"] == "queued"


async def test_a_definition_a_schedule_starts_cannot_be_deleted(
    client: httpx.AsyncClient, engine: Engine, target_server: TargetServer
) -> None:
    await client.put("/api/v1/workflows/search", json=definition(target_server))
    # stored as a schedule naming the definition would be (the schedule API checks its own input)
    await store_of(engine).create_schedule(
        {
            "name": "nightly",
            "cron": "0 3 * * *",
            "timezone": "UTC",
            "workflow": {"name": "search", "params": {"query": "cats"}},
            "overlap": "allow",
            "catch_up": "none",
        }
    )
    refused = await client.delete("/api/v1/workflows/search")
    assert refused.status_code == 409
    assert "nightly" in refused.json()["detail"]["message"]
