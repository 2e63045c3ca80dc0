"""InterfaceMasters over REST, and contracts between tasks checked at creation and at run time.

The chain is search -> enrich -> notify against the real demo API (examples/demo_api) on
127.0.0.1; the masters are the README's example.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from engine import Engine
from engine.store.tables import tasks
from tests.integration.target_server import TargetServer
from tests.support.demo_server import DemoServer
from tests.support.store import store_of
from tests.support.waiting import api_job_ends

SEARCH = {
    "name": "SearchResultInterface",
    "description": "What GET /search answers",
    "output_schema": {
        "type": "object",
        "required": ["query", "count", "results"],
        "properties": {
            "query": {"type": "string"},
            "count": {"type": "integer", "minimum": 0},
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "title"],
                    "properties": {"id": {"type": "integer"}, "title": {"type": "string"}},
                },
            },
        },
    },
}
ENRICH = {
    "name": "EnrichInterface",
    "input_schema": {
        "type": "object",
        "required": ["ids"],
        "properties": {"ids": {"type": "array", "items": {"type": "integer"}}},
    },
    "output_schema": {
        "type": "object",
        "required": ["items", "count"],
        "properties": {"count": {"type": "integer"}, "items": {"type": "array"}},
    },
}
NOTIFY = {
    "name": "NotifyInterface",
    "input_schema": {
        "type": "object",
        "required": ["message"],
        "properties": {"message": {"type": "string"}, "n": {"type": "integer"}},
    },
}


async def create_masters(client: httpx.AsyncClient) -> None:
    for master in (SEARCH, ENRICH, NOTIFY):
        response = await client.post("/api/v1/interface-masters", json=master)
        assert response.status_code == 201, response.text


def chain(base: str, *, ids: str = "{{ tasks.search.output.results[0].id }}") -> dict[str, Any]:
    return {
        "name": "search-enrich-notify",
        "validate_interfaces": True,
        "params": {"query": "cats"},
        "tasks": [
            {
                "name": "search",
                "url": f"{base}/search",
                "params": {"q": "{{ params.query }}", "limit": 3},
                "interface": "SearchResultInterface",
            },
            {
                "name": "enrich",
                "method": "POST",
                "url": f"{base}/enrich",
                "body": {"ids": [ids]},
                "interface": "EnrichInterface",
            },
            {
                "name": "notify",
                "method": "POST",
                "url": f"{base}/notify",
                "body": {
                    "message": "enriched {{ tasks.enrich.output.count }} items",
                    "n": "{{ tasks.enrich.output.count }}",
                },
                "interface": "NotifyInterface",
            },
        ],
    }


async def report(client: httpx.AsyncClient, doc: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post("/api/v1/jobs", json=doc)
    assert response.status_code == 422, response.text
    errors: list[dict[str, Any]] = response.json()["detail"]["errors"]
    return errors


async def test_master_crud(client: httpx.AsyncClient, running: Engine) -> None:
    created = (await client.post("/api/v1/interface-masters", json=SEARCH)).json()
    assert created["id"].startswith("im_") and created["version"] == 1
    assert created["created_at"].endswith("Z")
    listed = (await client.get("/api/v1/interface-masters")).json()["items"]
    assert [m["name"] for m in listed] == ["SearchResultInterface"]
    by_name = (await client.get("/api/v1/interface-masters/SearchResultInterface")).json()
    by_id = (await client.get(f"/api/v1/interface-masters/{created['id']}")).json()
    assert by_name == by_id == created
    updated = await client.put(
        "/api/v1/interface-masters/SearchResultInterface", json={"description": "v2"}
    )
    assert updated.status_code == 200
    assert updated.json()["version"] == 2 and updated.json()["description"] == "v2"
    assert updated.json()["output_schema"] == SEARCH["output_schema"]
    duplicate = await client.post("/api/v1/interface-masters", json=SEARCH)
    assert duplicate.status_code == 409
    assert (await client.delete(f"/api/v1/interface-masters/{created['id']}")).status_code == 204
    assert (await client.get("/api/v1/interface-masters/SearchResultInterface")).status_code == 404


async def test_invalid_schema_is_refused_naming_the_keyword(client: httpx.AsyncClient) -> None:
    bad = {"name": "Bad", "output_schema": {"type": "object", "properties": {"x": {"type": 5}}}}
    response = await client.post("/api/v1/interface-masters", json=bad)
    assert response.status_code == 422
    (error,) = response.json()["detail"]["errors"]
    assert error["code"] == "invalid_schema"
    assert error["location"].startswith("/output_schema/properties/x/type")
    assert "type" in error["message"]


MASTER_WRITES = [
    ("POST", "/api/v1/interface-masters"),
    ("PUT", "/api/v1/interface-masters/SearchResultInterface"),
]


async def test_master_body_beyond_the_request_limit_is_413(engine: Engine) -> None:
    from api.main import create_app
    from api.settings import Settings

    settings = Settings(db_url=engine.config.db_url, max_request_bytes=1000)
    app = create_app(settings, engine=engine)
    app.state.engine, app.state.settings = engine, settings
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        assert (await http.post("/api/v1/interface-masters", json=SEARCH)).status_code == 201
        big = {"name": "SearchResultInterface", "description": "x" * 5000}
        for method, path in MASTER_WRITES:
            response = await http.request(method, path, json=big)
            assert response.status_code == 413, (method, response.text)
            assert response.json()["detail"]["code"] == "too_large"
        stored = (await http.get("/api/v1/interface-masters/SearchResultInterface")).json()
        assert stored["version"] == 1 and stored["description"] == SEARCH["description"]


@pytest.mark.parametrize(("method", "path"), MASTER_WRITES)
async def test_master_body_of_another_content_type_is_415(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await client.post("/api/v1/interface-masters", json=SEARCH)
    response = await client.request(
        method, path, content=b"<master/>", headers={"Content-Type": "application/xml"}
    )
    assert response.status_code == 415, response.text
    assert response.json()["detail"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(("method", "path"), MASTER_WRITES)
async def test_malformed_master_json_is_reported_as_for_jobs(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await client.post("/api/v1/interface-masters", json=SEARCH)
    raw, headers = b'{"name": ', {"Content-Type": "application/json"}
    master = await client.request(method, path, content=raw, headers=headers)
    job = await client.post("/api/v1/jobs", content=raw, headers=headers)
    assert master.status_code == job.status_code == 422, master.text
    assert master.json() == job.json()
    (error,) = master.json()["detail"]["errors"]
    assert error["code"] == "invalid_body" and error["message"].startswith("malformed JSON")


@pytest.mark.parametrize(("method", "path"), MASTER_WRITES)
async def test_master_field_errors_are_reported_as_for_jobs(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    await client.post("/api/v1/interface-masters", json=SEARCH)
    response = await client.request(method, path, json={"name": "not a name", "nope": 1})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail["code"] == "invalid_job" and detail["warnings"] == []
    by_location = {e["location"]: e for e in detail["errors"]}
    assert set(by_location) == {"/name", "/nope"}
    assert by_location["/nope"] == {
        "code": "invalid_field",
        "location": "/nope",
        "message": "Extra inputs are not permitted",
        "type": "extra_forbidden",
    }
    assert by_location["/name"]["type"] == "string_pattern_mismatch"


async def test_master_may_be_sent_as_yaml(client: httpx.AsyncClient) -> None:
    yaml_doc = b"name: Greeting\ninput_schema: {type: object, required: [message]}\n"
    created = await client.post(
        "/api/v1/interface-masters", content=yaml_doc, headers={"Content-Type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["input_schema"] == {"type": "object", "required": ["message"]}


async def test_compatible_chain_runs_and_succeeds(
    client: httpx.AsyncClient, running: Engine, demo: DemoServer
) -> None:
    await create_masters(client)
    created = await client.post("/api/v1/jobs", json=chain(demo.base_url))
    assert created.status_code == 201, created.text
    job = await api_job_ends(client, created.json()["job_id"])
    assert job["status"] == "succeeded"
    result = (await client.get(f"/api/v1/jobs/{job['job_id']}/result")).json()
    assert result["tasks"]["enrich"]["response_body"]["count"] == 1
    assert demo.notifications[-1]["message"] == "enriched 1 items"


@pytest.mark.parametrize(
    ("mutate", "code", "location", "edge"),
    [
        (
            lambda d: d["tasks"][1]["body"].update(ids=["{{ tasks.search.output.resultz[0] }}"]),
            "unknown_output_path",
            "/tasks/1/body/ids/0",
            "search -> enrich",
        ),
        (
            lambda d: d["tasks"][1]["body"].update(ids="{{ tasks.search.output.query }}"),
            "incompatible_types",
            "/tasks/1/body/ids",
            "search -> enrich",
        ),
        (
            lambda d: d["tasks"][1]["body"].update(ids=["{{ tasks.search.output.results[0] }}"]),
            "incompatible_types",
            "/tasks/1/body/ids/0",
            "search -> enrich",
        ),
        (
            lambda d: d["tasks"][1].update(body={"idz": [1]}),
            "missing_input_property",
            "/tasks/1/body",
            None,
        ),
        (
            lambda d: d["tasks"][2]["body"].update(message="{{ tasks.enrich.output.count }}"),
            "incompatible_types",
            "/tasks/2/body/message",
            "enrich -> notify",
        ),
        (
            lambda d: d["tasks"][2].update(interface="NoSuchInterface"),
            "unknown_interface",
            "/tasks/2/interface",
            None,
        ),
    ],
    ids=[
        "unknown-path",
        "string-for-array",
        "object-for-integer",
        "missing-required",
        "int-for-string",
        "unknown-interface",
    ],
)
async def test_each_incompatibility_is_refused_at_its_place(
    client: httpx.AsyncClient,
    demo: DemoServer,
    mutate: Any,
    code: str,
    location: str,
    edge: str | None,
) -> None:
    await create_masters(client)
    doc = chain(demo.base_url)
    mutate(doc)
    errors = await report(client, doc)
    found = [e for e in errors if e["code"] == code and e["location"] == location]
    assert found, errors
    assert found[0]["edge"] == edge
    assert found[0]["message"]
    assert (await client.get("/api/v1/jobs")).json()["items"] == [], "nothing stored"


async def test_validate_endpoint_reports_without_storing(
    client: httpx.AsyncClient, demo: DemoServer
) -> None:
    await create_masters(client)
    ok = await client.post("/api/v1/jobs/validate", json=chain(demo.base_url))
    assert ok.status_code == 200 and ok.json()["valid"] is True
    doc = chain(demo.base_url, ids="{{ tasks.search.output.nothing }}")
    assert (await client.post("/api/v1/jobs/validate", json=doc)).status_code == 422
    assert (await client.get("/api/v1/jobs")).json()["items"] == []


async def test_off_contract_response_fails_at_run_time_with_its_pointer(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    doc = {
        "tasks": [
            {
                "name": "fetch",
                "url": target_server.url("/json"),
                "output_schema": {
                    "type": "object",
                    "required": ["items"],
                    "properties": {"items": {"type": "array", "items": {"type": "string"}}},
                },
            },
            {"name": "after", "url": target_server.url("/json?after=1"), "depends_on": ["fetch"]},
        ]
    }
    job_id = (await client.post("/api/v1/jobs", json=doc)).json()["job_id"]
    assert (await api_job_ends(client, job_id))["status"] == "failed"
    result = (await client.get(f"/api/v1/jobs/{job_id}/result")).json()
    error = result["tasks"]["fetch"]["error"]
    assert error["type"] == "output_invalid"
    assert [e["pointer"] for e in error["errors"]] == ["/items/0", "/items/1", "/items/2"]
    assert result["tasks"]["fetch"]["attempts"] == 1, "an off-contract answer is not retried"
    assert result["tasks"]["after"]["status"] == "skipped"


async def test_input_violation_fails_before_any_call(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    doc = {
        "params": {"n": "not a number"},
        "tasks": [
            {
                "name": "send",
                "method": "POST",
                "url": target_server.url("/echo"),
                "body": {"n": "{{ params.n }}"},
                "input_schema": {
                    "type": "object",
                    "properties": {"n": {"type": "integer"}},
                    "required": ["n"],
                },
            }
        ],
    }
    job_id = (await client.post("/api/v1/jobs", json=doc)).json()["job_id"]
    assert (await api_job_ends(client, job_id))["status"] == "failed"
    error = (await client.get(f"/api/v1/jobs/{job_id}/result")).json()["error"]
    assert error["type"] == "input_invalid"
    assert error["errors"][0]["pointer"] == "/n"
    assert target_server.requests == [], "no HTTP call was made"


async def test_job_keeps_its_schemas_and_a_master_in_use_cannot_be_deleted(
    client: httpx.AsyncClient, engine: Engine, demo: DemoServer
) -> None:
    await create_masters(client)
    doc = chain(demo.base_url) | {"scheduled_at": "2999-01-01T00:00:00Z"}
    job_id = (await client.post("/api/v1/jobs", json=doc)).json()["job_id"]
    changed = {"output_schema": {"type": "object", "required": ["other"]}}
    assert (
        await client.put("/api/v1/interface-masters/SearchResultInterface", json=changed)
    ).status_code == 200
    async with store_of(engine).read() as conn:
        stored = (
            await conn.execute(
                select(tasks.c.spec).where(tasks.c.job_id == job_id, tasks.c.name == "search")
            )
        ).scalar_one()
    assert stored["output_schema"] == SEARCH["output_schema"], "the job kept its snapshot"
    in_use = await client.delete("/api/v1/interface-masters/SearchResultInterface")
    assert in_use.status_code == 409 and job_id in in_use.json()["detail"]["message"]
    assert (await client.post(f"/api/v1/jobs/{job_id}/cancel")).status_code == 200
    gone = await client.delete("/api/v1/interface-masters/SearchResultInterface")
    assert gone.status_code == 204
