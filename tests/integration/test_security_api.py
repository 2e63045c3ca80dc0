"""Access control over REST on a real server: API keys (401), admin endpoints (403), every
job-scoped route answering 404 to another key, the owner-filtered list, the audit log, keys made
and revoked through the API and the CLI, CORS, and the creation-time limits."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import Route, WebSocketRoute
from typer.testing import CliRunner
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from api.auth import OPEN_PATHS
from api.cli import app as cli_app
from api.main import create_app
from api.settings import Settings
from tests.support.api_server import ApiServer
from tests.support.waiting import until

ALICE = "alice:alice-key-0123456789abcdef"
BOB = "bob:bob-key-0123456789abcdefgh"
ROOT = "root:root-key-0123456789abcdefg"


def bearer(entry: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {entry.partition(':')[2]}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    db = tmp_path_factory.mktemp("security") / "api.db"
    with ApiServer(db, api_keys=(ALICE, BOB), admin_keys=(ROOT,), key_refresh_seconds=0.2) as s:
        yield s


def http(server: ApiServer, key: str | None = None) -> httpx.Client:
    headers = bearer(key) if key else {}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=10)


def submit(client: httpx.Client, **extra: Any) -> str:
    # a target that refuses connections: the job fails at once, which retry and delete need
    job = {"url": "http://127.0.0.1:9/nothing", "max_attempts": 1, **extra}
    created = client.post("/api/v1/jobs", json=job)
    assert created.status_code == 201, created.text
    return str(created.json()["job_id"])


def ended(client: httpx.Client, job_id: str) -> None:
    async def check() -> bool:
        answer = client.get(f"/api/v1/jobs/{job_id}").json()
        return answer["status"] in ("succeeded", "failed", "canceled")

    asyncio.run(until(check, timeout=15))


def test_a_request_without_a_known_key_is_401_with_www_authenticate(server: ApiServer) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-key"}, {"Authorization": "Basic abc"}):
        for method, path in (("GET", "/api/v1/jobs"), ("POST", "/api/v1/jobs"), ("GET", "/jobs")):
            answer = httpx.request(method, server.url(path), headers=headers, json={})
            assert answer.status_code == 401, (headers, path, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert answer.json()["detail"]["code"] == "unauthorized"
    assert httpx.get(server.url("/metrics")).status_code == 401
    assert httpx.get(server.url("/healthz")).status_code == 200, "health checks need no key"


def test_each_key_lists_only_its_jobs_and_an_admin_sees_all(server: ApiServer) -> None:
    with http(server, ALICE) as alice, http(server, BOB) as bob, http(server, ROOT) as root:
        mine = submit(alice, tags=["listing"])
        theirs = submit(bob, tags=["listing"])
        seen_by_alice = {j["job_id"] for j in alice.get("/api/v1/jobs?tag=listing").json()["items"]}
        seen_by_bob = {j["job_id"] for j in bob.get("/api/v1/jobs?tag=listing").json()["items"]}
        seen_by_root = {j["job_id"] for j in root.get("/api/v1/jobs?tag=listing").json()["items"]}
        assert seen_by_alice == {mine} and seen_by_bob == {theirs}
        assert seen_by_root == {mine, theirs}
        assert root.get(f"/api/v1/jobs/{mine}").status_code == 200


def _flat_routes(routes: list[Any]) -> Iterator[Any]:
    """Every route, included routers opened (FastAPI keeps them as one entry each; their
    ``effective_candidates`` carry the prefixed paths)."""
    for route in routes:
        nested = getattr(route, "effective_candidates", None)
        if nested is not None:
            yield from _flat_routes(nested())
        else:
            yield route


def _job_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the app that names a job, whatever its kind."""
    app = create_app(Settings())
    found = []
    for route in _flat_routes(app.routes):
        path = getattr(route, "path", "")
        if "{job_id}" not in path:
            continue
        original = getattr(route, "original_route", route)
        if isinstance(original, WebSocketRoute | APIWebSocketRoute):
            found.append(("WEBSOCKET", path))
            continue
        assert isinstance(original, APIRoute | Route), route
        found += [(m, path) for m in sorted(original.methods or []) if m != "HEAD"]
    return found


def test_every_job_route_answers_404_to_another_key(server: ApiServer) -> None:
    routes = _job_routes()
    assert {p for _, p in routes} >= {
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/result",
        "/api/v1/jobs/{job_id}/tasks/{task}/attempts",
        "/api/v1/jobs/{job_id}/graph",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/jobs/{job_id}/retry",
        "/jobs/{job_id}",
    }
    with http(server, ALICE) as alice, http(server, BOB) as bob:
        job_id = submit(alice)
        ended(alice, job_id)
        for method, template in routes:
            path = (
                template.replace("{job_id}", job_id)
                .replace("{task}", "main")
                .replace("{index}", "0")
            )
            if method == "WEBSOCKET":
                _socket_refuses(server, path, BOB)
                continue
            answer = bob.request(method, path)
            assert answer.status_code == 404, (method, template, answer.text)
            assert answer.json()["detail"]["code"] == "not_found"
        # the owner is not refused on any of them (DELETE last: it ends the job's life)
        for method, template in sorted(routes, key=lambda r: r[0] == "DELETE"):
            path = (
                template.replace("{job_id}", job_id)
                .replace("{task}", "main")
                .replace("{index}", "0")
            )
            answer = alice.request(method, path)
            assert (
                answer.status_code != 404
                or (method == "DELETE" and template.startswith("/jobs"))
                # the job has no for_each task: its instances are unknown, not refused
                or ("/instances" in template and "has no instances" in answer.text)
            ), (method, template, answer.text)


def _socket_refuses(server: ApiServer, path: str, key: str) -> None:
    """The job's event socket closes with 4404 for a key that does not own the job."""
    url = "ws" + server.url(path).removeprefix("http")
    with ws_connect(url, additional_headers=bearer(key)) as socket:
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
        assert socket.close_code == 4404


def test_the_event_stream_of_another_keys_job_answers_404(server: ApiServer) -> None:
    with http(server, ALICE) as alice, http(server, BOB) as bob:
        job_id = submit(alice)
        ended(alice, job_id)
        refused = bob.get("/api/v1/events", params={"job_id": job_id})
        assert refused.status_code == 404
        assert alice.get("/api/v1/events", params={"job_id": job_id}).status_code == 200


def test_every_route_but_the_open_ones_needs_a_key(server: ApiServer) -> None:
    """Enumerated from the app, so that a route added later cannot skip authentication."""
    app = create_app(Settings())
    docs = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
    checked = 0
    for route in _flat_routes(app.routes):
        path = str(getattr(route, "path", ""))
        original = getattr(route, "original_route", route)
        if path in docs or isinstance(original, WebSocketRoute | APIWebSocketRoute):
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in sorted(getattr(original, "methods", None) or []):
            if method == "HEAD":
                continue
            answer = httpx.request(method, server.url(concrete))
            open_route = any(path.endswith(p) for p in OPEN_PATHS)
            assert (answer.status_code != 401) == open_route, (method, path, answer.status_code)
            checked += 1
    assert checked >= 30


def test_a_batch_is_owned_and_audited_per_job(server: ApiServer) -> None:
    later = {"url": "http://127.0.0.1:9/", "scheduled_at": "2999-01-01T00:00:00Z"}
    with http(server, BOB) as bob, http(server, ALICE) as alice, http(server, ROOT) as root:
        answer = bob.post("/api/v1/jobs/batch", json={"jobs": [later, later]})
        ids = [item["job_id"] for item in answer.json()["items"]]
        assert len(ids) == 2
        for job_id in ids:
            assert alice.get(f"/api/v1/jobs/{job_id}").status_code == 404
            assert bob.get(f"/api/v1/jobs/{job_id}").status_code == 200
            [entry] = root.get("/api/v1/audit", params={"job_id": job_id}).json()["items"]
            assert (entry["actor"], entry["action"]) == ("bob", "job.create")


def test_admin_endpoints_answer_403_to_other_keys(server: ApiServer) -> None:
    master = {"name": "Forbidden", "input_schema": {"type": "object"}}
    with http(server, ALICE) as alice, http(server, ROOT) as root:
        assert alice.get("/api/v1/audit").status_code == 403
        assert alice.get("/api/v1/keys").status_code == 403
        assert alice.post("/api/v1/keys", json={"name": "x"}).status_code == 403
        assert alice.delete("/api/v1/keys/bob").status_code == 403
        assert alice.post("/api/v1/interface-masters", json=master).status_code == 403
        created = root.post("/api/v1/interface-masters", json=master)
        assert created.status_code == 201, created.text
        assert alice.get("/api/v1/interface-masters/Forbidden").status_code == 200
        assert alice.get("/api/v1/interface-masters").status_code == 200
        assert alice.put("/api/v1/interface-masters/Forbidden", json={}).status_code == 403
        assert alice.delete("/api/v1/interface-masters/Forbidden").status_code == 403
        assert alice.get("/api/v1/audit").json()["detail"]["code"] == "forbidden"
        assert root.delete("/api/v1/interface-masters/Forbidden").status_code == 204


def test_the_audit_log_records_who_did_what_and_filters(server: ApiServer) -> None:
    secret = "Bearer very-secret-target-token"
    with http(server, ALICE) as alice, http(server, BOB) as bob, http(server, ROOT) as root:
        job_id = submit(
            alice, headers={"Authorization": secret}, scheduled_at="2999-01-01T00:00:00Z"
        )
        assert alice.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
        assert bob.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 404
        assert alice.post(f"/api/v1/jobs/{job_id}/retry").status_code == 200
        ended(alice, job_id)
        assert root.delete(f"/api/v1/jobs/{job_id}").status_code == 204

        page = root.get("/api/v1/audit", params={"job_id": job_id})
        assert page.status_code == 200, page.text
        entries = list(reversed(page.json()["items"]))
        assert [(e["actor"], e["action"]) for e in entries] == [
            ("alice", "job.create"),
            ("alice", "job.cancel"),
            ("alice", "job.retry"),
            ("root", "job.delete"),
        ], "bob's refused cancel changed nothing and is not recorded"
        assert {e["address"] for e in entries} == {"127.0.0.1"}
        assert {e["target"] for e in entries} == {job_id}
        assert "very-secret" not in page.text

        by_action = root.get("/api/v1/audit", params={"job_id": job_id, "action": "job.cancel"})
        assert len(by_action.json()["items"]) == 1
        by_actor = root.get("/api/v1/audit", params={"job_id": job_id, "actor": "root"})
        assert [e["action"] for e in by_actor.json()["items"]] == ["job.delete"]
        first = entries[0]["at"]
        after = root.get("/api/v1/audit", params={"job_id": job_id, "after": first})
        before = root.get("/api/v1/audit", params={"job_id": job_id, "before": first})
        assert len(after.json()["items"]) == 4 and before.json()["items"] == []

        one = root.get("/api/v1/audit", params={"job_id": job_id, "limit": 2}).json()
        two = root.get(
            "/api/v1/audit", params={"job_id": job_id, "limit": 2, "cursor": one["next_cursor"]}
        ).json()
        newest_first = [e["id"] for e in reversed(entries)]
        assert [e["id"] for e in one["items"] + two["items"]] == newest_first
        assert two["next_cursor"] is None
        bad = root.get("/api/v1/audit", params={"cursor": "nope"})
        assert bad.status_code == 422 and bad.json()["detail"]["location"] == "/cursor"


def test_keys_made_and_revoked_over_rest(server: ApiServer) -> None:
    with http(server, ROOT) as root:
        made = root.post("/api/v1/keys", json={"name": "rest-made"})
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        assert key.startswith("jq_") and made.json()["prefix"] == key[:7]
        listed = root.get("/api/v1/keys").json()["items"]
        assert {k["name"] for k in listed} >= {"alice", "bob", "root", "rest-made"}
        assert key not in root.get("/api/v1/keys").text
        assert root.post("/api/v1/keys", json={"name": "rest-made"}).status_code == 409
        assert root.post("/api/v1/keys", json={"name": "bad name!"}).status_code == 422
        assert root.delete("/api/v1/keys/alice").status_code == 409, "environment keys stay"
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}
        ) as c:
            job_id = submit(c)
            assert c.get(f"/api/v1/jobs/{job_id}").status_code == 200
            assert root.delete("/api/v1/keys/rest-made").status_code == 204
            assert c.get(f"/api/v1/jobs/{job_id}").status_code == 401
        actions = root.get("/api/v1/audit", params={"actor": "root"}).json()["items"]
        assert {("key.create", "rest-made"), ("key.revoke", "rest-made")} <= {
            (e["action"], e["target"]) for e in actions
        }
        assert root.get(f"/api/v1/jobs/{job_id}").status_code == 200, "its jobs stay"


def test_keys_made_and_revoked_by_the_cli_reach_a_running_server(
    server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBQUEUE_DB_URL", server.db_url)
    runner = CliRunner()
    made = runner.invoke(cli_app, ["keys", "create", "--name", "from-cli"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    listed = runner.invoke(cli_app, ["keys", "list", "--json"])
    assert "from-cli" in listed.stdout and key not in listed.stdout
    headers = {"Authorization": f"Bearer {key}"}

    async def answers(status: int) -> bool:
        return httpx.get(server.url("/api/v1/jobs"), headers=headers).status_code == status

    asyncio.run(until(lambda: answers(200), timeout=10))
    revoked = runner.invoke(cli_app, ["keys", "revoke", "from-cli"])
    assert revoked.exit_code == 0, revoked.output
    asyncio.run(until(lambda: answers(401), timeout=10))
    again = runner.invoke(cli_app, ["keys", "revoke", "from-cli"])
    assert again.exit_code == 1 and "no active key" in again.output


def test_without_keys_the_api_is_open_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobqueue"), ApiServer(tmp_path / "o.db") as s:
        with http(s) as anonymous:
            job_id = submit(anonymous)
        assert httpx.get(s.url(f"/api/v1/jobs/{job_id}")).status_code == 200
        assert httpx.get(s.url("/api/v1/audit")).json()["items"][0]["actor"] == "anonymous"
    open_warnings = [r for r in caplog.records if "no API key is configured" in r.getMessage()]
    assert len(open_warnings) == 1


def test_cors_is_off_by_default_and_on_for_configured_origins(
    server: ApiServer, tmp_path: Path
) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    plain = httpx.options(server.url("/api/v1/jobs"), headers=preflight)
    assert "access-control-allow-origin" not in plain.headers
    with ApiServer(tmp_path / "c.db", cors_origins=("https://app.example",)) as s:
        allowed = httpx.options(s.url("/api/v1/jobs"), headers=preflight)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        other = httpx.options(s.url("/api/v1/jobs"), headers={**preflight, "Origin": "https://x"})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        simple = httpx.get(s.url("/healthz"), headers={"Origin": "https://app.example"})
        assert simple.headers["access-control-allow-origin"] == "https://app.example"


def test_the_cli_sends_jobqueue_api_key(server: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    refused = runner.invoke(cli_app, ["jobs", "list", "--server", server.base_url])
    assert refused.exit_code == 1 and "JOBQUEUE_API_KEY" in refused.output
    monkeypatch.setenv("JOBQUEUE_API_KEY", ALICE.partition(":")[2])
    listed = runner.invoke(cli_app, ["jobs", "list", "--json", "--server", server.base_url])
    assert listed.exit_code == 0, listed.output


def test_a_schedule_belongs_to_its_key_and_its_jobs_too(server: ApiServer) -> None:
    """Another key's schedule answers 404 on every route and is missing from its list; the
    admin sees it; the jobs a tick creates belong to the schedule's key."""
    schedule = {
        "name": "alice-nightly",
        "cron": "0 3 * * *",
        "job": {"url": "http://127.0.0.1:9/nothing", "max_attempts": 1},
    }
    with http(server, ALICE) as alice, http(server, BOB) as bob, http(server, ROOT) as root:
        created = alice.post("/api/v1/schedules", json=schedule)
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        for key in (sid, "alice-nightly"):
            assert bob.get(f"/api/v1/schedules/{key}").status_code == 404
            assert bob.patch(f"/api/v1/schedules/{key}", json={"enabled": False}).status_code == 404
            assert bob.delete(f"/api/v1/schedules/{key}").status_code == 404
        assert all(s["id"] != sid for s in bob.get("/api/v1/schedules").json()["items"])
        assert any(s["id"] == sid for s in alice.get("/api/v1/schedules").json()["items"])
        assert root.get(f"/api/v1/schedules/{sid}").status_code == 200
        assert alice.get(f"/api/v1/schedules/{sid}").json()["enabled"] is True
