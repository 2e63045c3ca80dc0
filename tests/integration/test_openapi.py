"""/openapi.json documents every route's request and answers, and real answers fit it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import httpx
import pytest
from pydantic import BaseModel

from api.routes.jobs import MAX_BATCH
from engine import Engine, JobStatus, TaskStatus
from engine.states import AttemptStatus
from schemas import api as wire
from tests.integration.target_server import TargetServer
from tests.support.waiting import api_job_ends

BODY_MEDIA_TYPES = {"application/json", "application/yaml"}
JOB_BODY_ROUTES = ["/api/v1/jobs", "/api/v1/jobs/batch", "/api/v1/jobs/validate"]


@pytest.fixture
async def openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(openapi: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    prefix = "#/components/schemas/"
    ref = schema["$ref"]
    assert ref.startswith(prefix), ref
    name = ref.removeprefix(prefix)
    assert name in openapi["components"]["schemas"], f"{ref} does not resolve"
    resolved: dict[str, Any] = openapi["components"]["schemas"][name]
    return resolved


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def test_every_operation_documents_its_success_answer(openapi: dict[str, Any]) -> None:
    seen = set()
    for method, path, operation in operations(openapi):
        seen.add((method, path))
        assert operation.get("summary"), (method, path)
        assert "``" not in operation.get("description", ""), (method, path)
        responses = operation["responses"]
        successes = [status for status in responses if status.startswith("2")]
        assert successes, (method, path)
        for success in successes:
            if success == "204":
                assert "content" not in responses[success], (method, path)
                continue
            content = responses[success]["content"]
            if "application/json" not in content:
                text = {("GET", "/metrics"), ("GET", "/api/v1/events")}
                assert (method, path) in text, "only /metrics and the event stream answer text"
                continue
            schema = content["application/json"]["schema"]
            assert resolve(openapi, schema).get("properties"), (method, path, success)
        for status, response in responses.items():
            if not status.startswith("2"):
                error = response["content"]["application/json"]["schema"]
                assert resolve(openapi, error).get("properties"), (method, path, status)
    assert ("POST", "/api/v1/jobs") in seen and ("GET", "/healthz") in seen
    # + the five schedule operations, the six workflow ones, the two instance reads, events,
    # task, stats, and the two callback ones (POST /callbacks/{token}, GET /jobs/{id}/webhooks)
    assert len(seen) == 22 + 5 + 6 + 2 + 3 + 2


@pytest.mark.parametrize("path", JOB_BODY_ROUTES)
def test_job_body_routes_declare_their_json_and_yaml_request_body(
    openapi: dict[str, Any], path: str
) -> None:
    body = openapi["paths"][path]["post"]["requestBody"]
    assert body["required"] is True
    assert set(body["content"]) == BODY_MEDIA_TYPES
    schemas = [resolve(openapi, c["schema"]) for c in body["content"].values()]
    assert schemas[0] == schemas[1]
    if path == "/api/v1/jobs/batch":
        assert schemas[0]["properties"]["jobs"]["maxItems"] == MAX_BATCH
    else:
        assert {resolve(openapi, s)["title"] for s in schemas[0]["anyOf"]} == {
            "JobSpec",
            "SingleCallSpec",
        }


def test_master_writes_declare_their_request_body(openapi: dict[str, Any]) -> None:
    for method, path, model in [
        ("post", "/api/v1/interface-masters", "InterfaceMasterIn"),
        ("put", "/api/v1/interface-masters/{key}", "InterfaceMasterUpdate"),
    ]:
        content = openapi["paths"][path][method]["requestBody"]["content"]
        assert set(content) == BODY_MEDIA_TYPES
        assert {resolve(openapi, c["schema"])["title"] for c in content.values()} == {model}


def test_every_reference_resolves_and_422s_have_the_app_shape(openapi: dict[str, Any]) -> None:
    for ref in set(refs(openapi)):
        assert isinstance(resolve(openapi, {"$ref": ref}), dict), ref
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    invalid = {"$ref": "#/components/schemas/InvalidReport"}
    for method, path, operation in operations(openapi):
        if "422" in operation["responses"]:
            schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
            assert schema == invalid, (method, path)


def test_submit_documents_idempotency_key_and_no_internal_notes(openapi: dict[str, Any]) -> None:
    submit = openapi["paths"]["/api/v1/jobs"]["post"]
    assert [p["name"] for p in submit["parameters"]] == ["Idempotency-Key"]
    assert set(submit["responses"]["201"]["headers"]) == {"Location"}
    assert set(submit["responses"]["200"]["headers"]) == {"Location", "Idempotent-Replayed"}
    for _, _, operation in operations(openapi):
        text = operation.get("description", "").lower()
        assert "hot path" not in text and "dependency injection" not in text


async def test_swagger_ui_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger-ui" in response.text and "/openapi.json" in response.text


def test_documented_statuses_are_the_engine_states() -> None:
    assert set(get_args(wire.JobStatusName)) == {s.value for s in JobStatus}
    assert set(get_args(wire.TaskStatusName)) == {s.value for s in TaskStatus}
    assert set(get_args(wire.AttemptStatusName)) == {s.value for s in AttemptStatus}


def documented(model: type[BaseModel], answer: httpx.Response, status: int) -> Any:
    """The answer's JSON, checked to be exactly what ``model`` describes (no field left out)."""
    assert answer.status_code == status, answer.text
    data = answer.json()
    parsed = model.model_validate(data)
    assert parsed.model_dump(mode="json", by_alias=True, exclude_unset=True) == data
    return data


async def test_real_answers_fit_the_documented_models(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    dag = {
        "name": "documented",
        "tasks": [
            {"name": "a", "url": target_server.url("/json")},
            {
                "name": "b",
                "method": "POST",
                "url": target_server.url("/echo"),
                "body": {"items": "{{ tasks.a.output.items }}"},
            },
            {"name": "c", "url": target_server.url("/status/500"), "max_attempts": 1},
        ],
    }
    checked = await client.post("/api/v1/jobs/validate", json=dag)
    assert documented(wire.ValidationAnswer, checked, 200)["warnings"]
    created = documented(wire.SubmitAnswer, await client.post("/api/v1/jobs", json=dag), 201)
    assert created["warnings"]
    job_id = created["job_id"]
    single = await client.post("/api/v1/jobs", json={"url": target_server.url("/text")})
    documented(wire.SubmitAnswer, single, 201)
    await api_job_ends(client, job_id)
    await api_job_ends(client, single.json()["job_id"])

    base = f"/api/v1/jobs/{job_id}"
    assert documented(wire.JobDetail, await client.get(base), 200)["status"] == "failed"
    documented(wire.JobDetail, await client.get(f"/api/v1/jobs/{single.json()['job_id']}"), 200)
    result = documented(wire.JobResult, await client.get(f"{base}/result"), 200)
    assert result["tasks"]["c"]["error"]
    attempts = documented(wire.AttemptList, await client.get(f"{base}/tasks/c/attempts"), 200)
    assert attempts["attempts"][0]["error"]
    graph = documented(wire.Graph, await client.get(f"{base}/graph"), 200)
    assert {"from": "a", "to": "b"} in graph["edges"]
    documented(wire.JobPage, await client.get("/api/v1/jobs?limit=1"), 200)
    documented(wire.JobState, await client.post(f"{base}/retry"), 200)
    await api_job_ends(client, job_id)
    documented(wire.ErrorAnswer, await client.post(f"{base}/cancel"), 409)
    documented(wire.ErrorAnswer, await client.get("/api/v1/jobs/j_nope"), 404)

    batch = {"jobs": [{"url": target_server.url("/json")}, {"url": "ftp://x"}]}
    answer = documented(wire.BatchAnswer, await client.post("/api/v1/jobs/batch", json=batch), 200)
    assert [item["status_code"] for item in answer["items"]] == [201, 422]
    bad = {"tasks": [{"name": "a", "url": "http://x/", "depends_on": ["zz"]}]}
    documented(wire.InvalidReport, await client.post("/api/v1/jobs", json=bad), 422)
    documented(wire.InvalidReport, await client.post("/api/v1/jobs", json={"nope": 1}), 422)
    documented(wire.InvalidReport, await client.get("/api/v1/jobs?status=bogus"), 422)
    documented(wire.InvalidReport, await client.get("/api/v1/jobs?cursor=nonsense"), 422)

    master = {"name": "M", "output_schema": {"type": "object"}}
    created_master = await client.post("/api/v1/interface-masters", json=master)
    documented(wire.InterfaceMaster, created_master, 201)
    documented(wire.InterfaceMasterList, await client.get("/api/v1/interface-masters"), 200)
    documented(wire.InterfaceMaster, await client.get("/api/v1/interface-masters/M"), 200)
    documented(wire.Health, await client.get("/healthz"), 200)
