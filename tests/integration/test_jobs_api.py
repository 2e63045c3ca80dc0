"""The core over REST: submit a single call, watch it run on a real local server, read it back."""

from __future__ import annotations

import re

import httpx
import pytest

from engine import Engine
from tests.integration.target_server import TargetServer
from tests.support.waiting import api_job_ends

JOB_ID = re.compile(r"^j_[0-9A-HJKMNP-TV-Z]{26}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_single_call_round_trip(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    body = {
        "method": "POST",
        "url": target_server.url("/echo?from=url"),
        "headers": {"Content-Type": "application/json", "X-Custom": "1"},
        "params": {"debug": "1"},
        "body": {"message": "hello"},
        "timeout_sec": 15,
        "priority": 5,
        "max_attempts": 3,
        "backoff_strategy": "exponential",
        "backoff_seconds": 5,
        "scheduled_at": None,
        "ttl_seconds": 604800,
        "tags": ["demo"],
    }
    created = await client.post("/api/v1/jobs", json=body)
    assert created.status_code == 201, created.text
    data = created.json()
    assert JOB_ID.match(data["job_id"]) and data["status"] == "queued"
    assert created.headers["location"] == f"/api/v1/jobs/{data['job_id']}"

    job = await api_job_ends(client, data["job_id"])
    assert job["status"] == "succeeded"
    for key in ("job_id", "status", "attempt", "max_attempts", "priority", "scheduled_at"):
        assert key in job
    assert job["attempt"] == 1 and job["max_attempts"] == 3 and job["priority"] == 5
    assert job["method"] == "POST" and job["timeout_sec"] == 15 and job["tags"] == ["demo"]
    assert ISO_Z.match(job["created_at"]) and ISO_Z.match(job["finished_at"])
    assert [t["name"] for t in job["tasks"]] == ["main"]

    result = (await client.get(f"/api/v1/jobs/{data['job_id']}/result")).json()
    assert result["response_status"] == 200 and result["response_truncated"] is False
    echo = result["response_body"]
    assert echo["method"] == "POST" and echo["body"] == {"message": "hello"}
    assert echo["query"] == {"from": ["url"], "debug": ["1"]}, "URL query and params are merged"
    assert result["tasks"]["main"]["attempts"] == 1
    assert result["duration_ms"] >= 0

    attempts = (await client.get(f"/api/v1/jobs/{data['job_id']}/tasks/main/attempts")).json()
    assert [a["status"] for a in attempts["attempts"]] == ["succeeded"]
    assert attempts["attempts"][0]["response_status"] == 200


async def test_duration_ms_is_whole_milliseconds(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    dag = {
        "tasks": [
            {"name": "a", "url": target_server.url("/json")},
            {"name": "b", "url": target_server.url("/text"), "depends_on": ["a"]},
        ]
    }
    job_id = (await client.post("/api/v1/jobs", json=dag)).json()["job_id"]
    assert (await api_job_ends(client, job_id))["status"] == "succeeded"

    result = (await client.get(f"/api/v1/jobs/{job_id}/result")).json()
    durations = [result["duration_ms"]] + [t["duration_ms"] for t in result["tasks"].values()]
    for name in ("a", "b"):
        attempts = (await client.get(f"/api/v1/jobs/{job_id}/tasks/{name}/attempts")).json()
        durations += [a["duration_ms"] for a in attempts["attempts"]]
    assert len(durations) == 5
    assert all(type(d) is int and d >= 0 for d in durations), durations


async def test_request_carries_job_headers_and_idempotency_key(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    job_id = (
        await client.post(
            "/api/v1/jobs",
            json={
                "url": target_server.url("/flaky/hdr?fail=2"),
                "max_attempts": 3,
                "backoff_seconds": 0.01,
            },
        )
    ).json()["job_id"]
    assert (await api_job_ends(client, job_id))["status"] == "succeeded"
    seen = [r for r in target_server.requests if r.path.startswith("/flaky/hdr")]
    assert [r.header("x-jobqueue-attempt") for r in seen] == ["1", "2", "3"]
    assert {r.header("x-jobqueue-job") for r in seen} == {job_id}
    assert {r.header("x-jobqueue-task") for r in seen} == {"main"}
    assert {r.header("idempotency-key") for r in seen} == {f"{job_id}:main"}


async def test_unversioned_paths_answer_the_same(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    created = await client.post("/jobs", json={"url": target_server.url("/json")})
    assert created.status_code == 201
    job_id = created.json()["job_id"]
    await api_job_ends(client, job_id)
    old = (await client.get(f"/jobs/{job_id}")).json()
    new = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    assert old == new
    assert (await client.get(f"/jobs/{job_id}/result")).json()["response_body"] == {
        "ok": True,
        "items": [1, 2, 3],
    }


async def test_text_body_is_stored_as_text_and_big_body_truncated(
    db_url: str, target_server: TargetServer
) -> None:
    from tests.support.config import make_config
    from tests.support.waiting import job_ends

    engine = await Engine.open(make_config(db_url, result_max_bytes=1000))
    try:
        engine.start_worker()
        from schemas.jobs import parse_job_document

        text = await engine.submit(parse_job_document({"url": target_server.url("/text")}))
        big = await engine.submit(
            parse_job_document({"url": target_server.url("/big?bytes=5000000")})
        )
        await job_ends(engine, text.job_id)
        await job_ends(engine, big.job_id)
        text_result = await engine.get_result(text.job_id)
        assert isinstance(text_result["response_body"], str)
        assert text_result["response_truncated"] is False
        big_result = await engine.get_result(big.job_id)
        assert big_result["status"] == "succeeded"
        assert big_result["response_truncated"] is True
        assert len(big_result["response_body"]) == 1000
    finally:
        await engine.close()


async def test_list_filters_and_cursor_paging(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    ids = []
    for i in range(5):
        doc = {"url": target_server.url("/json"), "tags": ["even" if i % 2 == 0 else "odd"]}
        if i == 0:
            doc["name"] = "first"
        ids.append((await client.post("/api/v1/jobs", json=doc)).json()["job_id"])

    page1 = (await client.get("/api/v1/jobs?limit=2")).json()
    assert [j["job_id"] for j in page1["items"]] == [ids[4], ids[3]]
    page2 = (await client.get(f"/api/v1/jobs?limit=2&cursor={page1['next_cursor']}")).json()
    page3 = (await client.get(f"/api/v1/jobs?limit=2&cursor={page2['next_cursor']}")).json()
    assert [j["job_id"] for j in page2["items"]] == [ids[2], ids[1]]
    assert [j["job_id"] for j in page3["items"]] == [ids[0]] and page3["next_cursor"] is None

    even = (await client.get("/api/v1/jobs?tag=even")).json()["items"]
    assert sorted(j["job_id"] for j in even) == sorted([ids[0], ids[2], ids[4]])
    named = (await client.get("/api/v1/jobs?name=first")).json()["items"]
    assert [j["job_id"] for j in named] == [ids[0]]
    queued = (await client.get("/api/v1/jobs?status=queued")).json()["items"]
    assert len(queued) == 5
    assert (await client.get("/api/v1/jobs?status=succeeded")).json()["items"] == []
    future = (await client.get("/api/v1/jobs?created_after=2999-01-01T00:00:00Z")).json()
    assert future["items"] == []
    past = (await client.get("/api/v1/jobs?created_before=2000-01-01T00:00:00Z")).json()
    assert past["items"] == []
    bad = await client.get("/api/v1/jobs?cursor=nonsense")
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "location"),
    [
        (b'{"url": ', "application/json", 422, None),
        (b'{"url": "http://x/\\ud800"}', "application/json", 422, None),
        (
            b'{"url": "http://127.0.0.1/", "priority": 123456789012345678901234567890}',
            None,
            422,
            "/priority",
        ),
        (b'{"url": "http://127.0.0.1/", "body": {"n": 1e400}}', None, 422, None),
        (b'{"url": "http://127.0.0.1/", "nope": 1}', None, 422, "/nope"),
        (b'{"url": "http://127.0.0.1/", "max_attempts": "many"}', None, 422, "/max_attempts"),
        (
            b'{"tasks": [{"name": "a", "url": "http://127.0.0.1/", "bogus": 1}]}',
            None,
            422,
            "/tasks/0/bogus",
        ),
        (b"[1, 2]", None, 422, None),
        (b"", None, 422, None),
        (b"url: [", "application/yaml", 422, None),
        (b"<xml/>", "application/xml", 415, None),
    ],
)
async def test_bad_input_is_a_clear_4xx(
    client: httpx.AsyncClient,
    raw: bytes,
    content_type: str | None,
    status: int,
    location: str | None,
) -> None:
    headers = {"Content-Type": content_type or "application/json"}
    response = await client.post("/api/v1/jobs", content=raw, headers=headers)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert "code" in detail
    if location is not None:
        assert location in [e["location"] for e in detail["errors"]], detail


async def test_nul_bytes_in_url_or_headers_are_refused(client: httpx.AsyncClient) -> None:
    bad_url = await client.post("/api/v1/jobs", json={"url": "http://127.0.0.1/\u0000x"})
    assert bad_url.status_code == 422
    bad_header = await client.post(
        "/api/v1/jobs", json={"url": "http://127.0.0.1/", "headers": {"X-A": "a\r\nb"}}
    )
    assert bad_header.status_code == 422
    assert bad_header.json()["detail"]["errors"][0]["location"].startswith("/headers")
    bad_name = await client.post(
        "/api/v1/jobs", json={"url": "http://127.0.0.1/", "headers": {"X-A\n": "a"}}
    )
    assert bad_name.status_code == 422, "a header name ending in a newline is no token"


async def test_too_large_body_is_413(engine: Engine) -> None:
    from api.main import create_app
    from api.settings import Settings

    settings = Settings(db_url=engine.config.db_url, max_request_bytes=1000)
    app = create_app(settings, engine=engine)
    app.state.engine, app.state.settings = engine, settings
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        response = await http.post(
            "/api/v1/jobs", json={"url": "http://127.0.0.1/", "body": "x" * 5000}
        )
    assert response.status_code == 413


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    for path in (
        "/api/v1/jobs/j_nope",
        "/api/v1/jobs/j_nope/result",
        "/api/v1/jobs/j_nope/tasks/main/attempts",
        "/api/v1/jobs/j_nope/graph",
    ):
        assert (await client.get(path)).status_code == 404, path
    assert (await client.post("/api/v1/jobs/j_nope/cancel")).status_code == 404
    assert (await client.post("/api/v1/jobs/j_nope/retry")).status_code == 404


async def test_yaml_body_is_accepted(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    yaml_doc = f"method: GET\nurl: {target_server.url('/json')}\ntags: [yaml]\n".encode()
    response = await client.post(
        "/api/v1/jobs", content=yaml_doc, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 201, response.text


async def test_idempotency_key_returns_the_first_job(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    doc = {"url": target_server.url("/json")}
    headers = {"Idempotency-Key": "abc-123"}
    first = await client.post("/api/v1/jobs", json=doc, headers=headers)
    again = await client.post("/api/v1/jobs", json=doc, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["job_id"] == again.json()["job_id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post(
        "/api/v1/jobs", json={"url": target_server.url("/text")}, headers=headers
    )
    assert other.status_code == 422
    assert len((await client.get("/api/v1/jobs")).json()["items"]) == 1


async def test_delete_removes_an_ended_job_and_refuses_a_live_one(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    done = (await client.post("/api/v1/jobs", json={"url": target_server.url("/json")})).json()
    assert (await api_job_ends(client, done["job_id"]))["status"] == "succeeded"
    later = {"url": target_server.url("/json"), "scheduled_at": "2999-01-01T00:00:00Z"}
    waiting = (await client.post("/api/v1/jobs", json=later)).json()
    assert (await client.delete(f"/api/v1/jobs/{waiting['job_id']}")).status_code == 409
    response = await client.delete(f"/api/v1/jobs/{done['job_id']}")
    assert response.status_code == 204 and response.content == b""
    for path in ("", "/result", "/tasks/main/attempts"):
        assert (await client.get(f"/api/v1/jobs/{done['job_id']}{path}")).status_code == 404
    assert (await client.delete(f"/api/v1/jobs/{done['job_id']}")).status_code == 404
    listed = (await client.get("/api/v1/jobs")).json()["items"]
    assert [j["job_id"] for j in listed] == [waiting["job_id"]]
