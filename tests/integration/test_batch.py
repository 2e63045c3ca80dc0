"""POST /api/v1/jobs/batch: many jobs in one request, each accepted or refused on its own."""

from __future__ import annotations

import httpx

from engine import Engine
from tests.integration.target_server import TargetServer
from tests.support.waiting import api_job_ends


async def test_each_item_is_accepted_or_refused_on_its_own(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    url = target_server.url("/json")
    jobs = [
        {"url": url},
        {"url": url, "nope": 1},
        {"tasks": [{"name": "a", "url": url, "depends_on": ["a"]}]},
        {"document": {"url": url + "?k=1"}, "idempotency_key": "k-1"},
        {"document": {"url": url + "?k=1"}, "idempotency_key": "k-1"},
        {"tasks": [{"name": "a", "url": url}, {"name": "b", "url": url, "depends_on": ["a"]}]},
    ]
    response = await client.post("/api/v1/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["index"] for i in items] == list(range(6))
    assert [i["status_code"] for i in items] == [201, 422, 422, 201, 200, 201]
    assert items[1]["error"]["errors"][0]["location"] == "/nope"
    assert items[2]["error"]["errors"][0]["code"] in {"self_dependency", "cycle"}
    assert items[3]["job_id"] == items[4]["job_id"], "same Idempotency-Key: the first job"
    accepted = {i["job_id"] for i in items if "job_id" in i}
    assert len(accepted) == 3
    for job_id in accepted:
        assert (await api_job_ends(client, job_id))["status"] == "succeeded"
    listed = (await client.get("/api/v1/jobs?limit=10")).json()["items"]
    assert {j["job_id"] for j in listed} == accepted, "refused items stored nothing"


async def test_a_reused_key_with_another_body_is_refused_inside_one_batch(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    url = target_server.url("/json")
    jobs = [
        {"document": {"url": url + "?k=1"}, "idempotency_key": "same"},
        {"document": {"url": url + "?k=2"}, "idempotency_key": "same"},
        {"document": {"url": url + "?k=1"}, "idempotency_key": "same"},
    ]
    items = (await client.post("/api/v1/jobs/batch", json={"jobs": jobs})).json()["items"]
    assert [i["status_code"] for i in items] == [201, 422, 200]
    assert items[1]["error"]["code"] == "idempotency_key_reused"
    assert items[2]["job_id"] == items[0]["job_id"]
    listed = (await client.get("/api/v1/jobs?limit=10")).json()["items"]
    assert [j["job_id"] for j in listed] == [items[0]["job_id"]]


async def test_the_envelope_is_checked(client: httpx.AsyncClient) -> None:
    for body in ({"jobs": []}, {"jobs": {}}, {"items": []}, [1], {"jobs": [{}] * 1001}):
        response = await client.post("/api/v1/jobs/batch", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"]["errors"][0]["location"] == "/jobs"
