"""The reads the dashboard uses besides the job routes: one task in full (its request with
secret header values masked) and the job figures (per status, finished per minute)."""

from __future__ import annotations

import re

import httpx
from cryptography.fernet import Fernet

from engine import Engine
from engine.jobs.stats import job_stats
from schemas.dashboard import JobStats, TaskView
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.store import submit
from tests.support.waiting import api_job_ends


async def test_a_task_shows_its_request_with_secrets_masked_and_its_response(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    document = {
        "name": "masked",
        "tasks": [
            {
                "name": "call",
                "method": "POST",
                "url": target_server.url("/json"),
                "headers": {"Authorization": "Bearer s3cret", "X-Trace": "t-1"},
                "params": {"q": "{{ params.q }}"},
                "body": {"n": 1},
            }
        ],
        "params": {"q": "cats"},
    }
    job_id = (await client.post("/api/v1/jobs", json=document)).json()["job_id"]
    await api_job_ends(client, job_id)
    answer = await client.get(f"/api/v1/jobs/{job_id}/tasks/call")
    assert answer.status_code == 200
    task = answer.json()
    assert TaskView.model_validate(task).model_dump(mode="json", exclude_unset=True) == task
    assert "s3cret" not in answer.text
    assert task["request"] == {
        "method": "POST",
        "url": target_server.url("/json"),
        "headers": {"Authorization": "***", "X-Trace": "t-1"},
        "params": {"q": "{{ params.q }}"},
        "body": {"n": 1},
        "timeout_sec": None,
    }
    assert task["status"] == "succeeded"
    assert task["result"]["response_status"] == 200
    assert task["result"]["response_body"] == {"ok": True, "items": [1, 2, 3]}
    missing = await client.get(f"/api/v1/jobs/{job_id}/tasks/nope")
    assert missing.status_code == 404


async def test_stats_count_jobs_per_status_and_per_minute(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    ok = (await client.post("/api/v1/jobs", json={"url": target_server.url("/json")})).json()
    bad = await client.post("/api/v1/jobs", json={"url": target_server.url("/status/404")})
    await api_job_ends(client, ok["job_id"])
    await api_job_ends(client, bad.json()["job_id"])
    answer = await client.get("/api/v1/stats", params={"minutes": 5})
    assert answer.status_code == 200
    stats = JobStats.model_validate(answer.json())
    assert stats.model_dump(mode="json", exclude_unset=True) == answer.json()
    assert stats.counts == {"succeeded": 1, "failed": 1} and stats.total == 2
    assert len(stats.throughput) == 5
    assert stats.throughput[-1].succeeded == 1 and stats.throughput[-1].failed == 1
    assert (await client.get("/api/v1/stats", params={"minutes": 0})).status_code == 422


def test_throughput_buckets_by_whole_minute_oldest_first() -> None:
    now = 600.0 * 60 + 30  # half a minute into minute 600
    finished = [(now - 5, "succeeded"), (now - 40, "failed"), (now - 200, "canceled")]
    stats = job_stats({"succeeded": 1}, finished, now=now, minutes=3)
    assert [(m["succeeded"], m["failed"], m["canceled"]) for m in stats["throughput"]] == [
        (0, 0, 0),
        (0, 1, 0),
        (1, 0, 0),
    ]
    assert stats["throughput"][-1]["minute"].endswith(":00:00.000Z")


async def test_the_dashboard_pages_and_their_scripts_are_served_by_the_app(
    client: httpx.AsyncClient,
) -> None:
    root = await client.get("/ui")
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    for path in ("/ui/", "/ui/jobs/j_x", "/ui/submit", "/ui/interfaces", "/ui/schedules"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/ui/static/' in page.text
        assert not re.search(r'(src|href)="(https?:)?//', page.text), "nothing from a CDN"
    scripts = ("api.js", "graph.js", "job.js", "jobs.js", "submit.js", "interfaces.js")
    for name in (*scripts, "schedules.js"):
        script = await client.get(f"/ui/static/{name}")
        assert script.status_code == 200, name
        assert "javascript" in script.headers["content-type"]
    assert (await client.get("/ui/static/app.css")).status_code == 200
    assert "/ui" not in (await client.get("/openapi.json")).json()["paths"]


async def test_with_a_secret_key_a_task_shows_its_request_decrypted_and_masked(
    db_url: str, target_server: TargetServer
) -> None:
    engine = await Engine.open(make_config(db_url, secret_keys=(Fernet.generate_key().decode(),)))
    try:
        document = {
            "name": "sealed",
            "tasks": [
                {
                    "name": "call",
                    "method": "POST",
                    "url": target_server.url("/json"),
                    "headers": {"Authorization": "Bearer s3cret"},
                    "body": {"card": "4111"},
                }
            ],
        }
        job_id = await submit(engine, document)
        task = await engine.get_task(job_id, "call")
        assert task["request"]["body"] == {"card": "4111"}
        assert task["request"]["headers"] == {"Authorization": "***"}
        stream = engine.job_events(job_id)
        snapshot = await anext(stream)
        await stream.aclose()
        assert snapshot["type"] == "snapshot" and "s3cret" not in str(snapshot)
    finally:
        await engine.close()
