"""for_each end to end: real SQLite file, real local target that counts the calls."""

from __future__ import annotations

import time
from typing import Any

import orjson

from engine import Engine
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.store import store_of
from tests.support.waiting import job_ends


async def submit(engine: Engine, doc: dict[str, Any]) -> str:
    return (await engine.submit(parse_job_document(doc))).job_id


def mapped(target: TargetServer, items: Any, **extra: Any) -> dict[str, Any]:
    return {
        "name": "fan",
        "params": {"ids": items},
        "tasks": [
            {
                "name": "each",
                "for_each": "{{ params.ids }}",
                "method": "POST",
                "url": target.url("/echo"),
                "body": {"id": "{{ item }}", "index": "{{ item_index }}"},
                **extra,
            },
            {
                "name": "after",
                "method": "POST",
                "url": target.url("/echo"),
                "body": {"n": "{{ tasks.each.output | length }}"},
            },
        ],
    }


async def test_five_items_make_five_calls_with_their_items_and_an_ordered_output(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(running, mapped(target_server, [10, 11, 12, 13, 14]))
    job = await job_ends(running, job_id)
    assert job["status"] == "succeeded", job
    calls = [r for r in target_server.requests if r.path == "/echo"]
    sent = [orjson.loads(r.body) for r in calls]
    bodies = sorted((b for b in sent if "id" in b), key=lambda b: b["index"])
    assert [(b["id"], b["index"]) for b in bodies] == [(10 + i, i) for i in range(5)]
    assert [t["name"] for t in job["tasks"]] == ["each", "after"]
    each = next(t for t in job["tasks"] if t["name"] == "each")
    assert each["instances"] == {"total": 5, "succeeded": 5, "failed": 0, "running": 0}
    result = await running.get_result(job_id)
    outputs = result["tasks"]["each"]["response_body"]
    assert [o["body"]["id"] for o in outputs] == [10, 11, 12, 13, 14]
    assert result["tasks"]["after"]["response_body"]["body"] == {"n": 5}
    first = await running.get_instances(job_id, "each", limit=2)
    assert [i["index"] for i in first["items"]] == [0, 1] and first["next_start"] == 2
    last = await running.get_instances(job_id, "each", start=4, limit=2)
    assert [i["output"]["body"]["id"] for i in last["items"]] == [14]
    assert last["next_start"] is None


async def test_an_empty_list_succeeds_with_an_empty_output(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(running, mapped(target_server, []))
    job = await job_ends(running, job_id)
    assert job["status"] == "succeeded"
    result = await running.get_result(job_id)
    assert result["tasks"]["each"]["response_body"] == []
    assert result["tasks"]["after"]["response_body"]["body"] == {"n": 0}


async def test_a_failing_instance_fails_the_task_and_cancels_the_unstarted_ones(
    running: Engine, target_server: TargetServer
) -> None:
    doc = mapped(target_server, [200, 200, 500, 200, 200, 200], max_parallel=1, max_attempts=2)
    doc["tasks"][0]["url"] = target_server.url("/status/{{ item }}")
    job_id = await submit(running, doc)
    job = await job_ends(running, job_id)
    assert job["status"] == "failed"
    each = job["tasks"][0]
    assert each["status"] == "failed"
    assert each["instances"] == {"total": 6, "succeeded": 2, "failed": 1, "running": 0}
    assert job["tasks"][1]["status"] == "skipped"
    # one at a time: items 0 and 1, then item 2 twice (its retry), then nothing more
    paths = [r.path for r in target_server.requests]
    assert paths == ["/status/200", "/status/200", "/status/500", "/status/500"]
    page = await running.get_instances(job_id, "each")
    assert [(i["index"], i["status"]) for i in page["items"]] == [
        (0, "succeeded"),
        (1, "succeeded"),
        (2, "failed"),
        (3, "canceled"),
        (4, "canceled"),
        (5, "canceled"),
    ]
    attempts = await running.get_instance_attempts(job_id, "each", 2)
    assert [a["response_status"] for a in attempts] == [500, 500]
    result = await running.get_result(job_id)
    assert result["tasks"]["each"]["error"]["type"] == "instance_failed"
    assert result["tasks"]["each"]["error"]["item_index"] == 2


async def test_max_parallel_bounds_the_instances_in_flight(
    running: Engine, target_server: TargetServer
) -> None:
    doc = mapped(target_server, list(range(8)), max_parallel=2)
    doc["tasks"][0]["url"] = target_server.url("/slow?seconds=0.05")
    job = await job_ends(running, await submit(running, doc))
    assert job["status"] == "succeeded"
    assert target_server.max_in_flight == 2


async def test_too_many_items_fails_the_task(db_url: str, target_server: TargetServer) -> None:
    small = await Engine.open(make_config(db_url, max_map_items=3))
    small.start_worker()
    try:
        job_id = await submit(small, mapped(target_server, [1, 2, 3, 4]))
        job = await job_ends(small, job_id)
        result = await small.get_result(job_id)
    finally:
        await small.close()
    assert job["status"] == "failed"
    assert result["tasks"]["each"]["error"]["type"] == "too_many_items"
    assert target_server.requests == []


async def test_a_list_that_is_not_a_list_fails_the_task(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(running, mapped(target_server, {"not": "a list"}))
    assert (await job_ends(running, job_id))["status"] == "failed"
    result = await running.get_result(job_id)
    assert result["tasks"]["each"]["error"]["type"] == "for_each_not_list"


async def test_canceling_the_job_cancels_its_instances(
    running: Engine, target_server: TargetServer
) -> None:
    doc = mapped(target_server, list(range(6)), max_parallel=2)
    doc["tasks"][0]["url"] = target_server.url("/slow?seconds=30")
    job_id = await submit(running, doc)
    await target_server.wait_until(lambda: target_server.in_flight == 2)
    assert await running.cancel(job_id) == "canceled"
    await target_server.wait_idle()
    page = await running.get_instances(job_id, "each")
    assert {i["status"] for i in page["items"]} == {"canceled"}
    assert len(target_server.requests) == 2


async def test_a_retried_job_expands_again(running: Engine, target_server: TargetServer) -> None:
    doc = mapped(target_server, [1, 2])
    doc["tasks"][0]["url"] = target_server.url("/flaky/each-{{ item }}?fail=1")
    job_id = await submit(running, doc)
    assert (await job_ends(running, job_id))["status"] == "failed"
    await running.retry(job_id)
    job = await job_ends(running, job_id)
    assert job["status"] == "succeeded", job
    page = await running.get_instances(job_id, "each")
    assert [i["status"] for i in page["items"]] == ["succeeded", "succeeded"]


async def test_the_instances_endpoints_answer_pages_and_attempts(
    client: Any, running: Engine, target_server: TargetServer
) -> None:
    created = await client.post("/api/v1/jobs", json=mapped(target_server, ["a", "b", "c"]))
    job_id = created.json()["job_id"]
    await job_ends(running, job_id)
    page = await client.get(f"/api/v1/jobs/{job_id}/tasks/each/instances", params={"limit": 2})
    assert page.status_code == 200
    body = page.json()
    assert [i["index"] for i in body["items"]] == [0, 1] and body["next_start"] == 2
    assert body["items"][1]["output"]["body"]["id"] == "b"
    attempts = await client.get(f"/api/v1/jobs/{job_id}/tasks/each/instances/1/attempts")
    assert [a["status"] for a in attempts.json()["attempts"]] == ["succeeded"]
    detail = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    assert detail["tasks"][0]["instances"]["succeeded"] == 3
    missing = await client.get(f"/api/v1/jobs/{job_id}/tasks/after/instances")
    assert missing.status_code == 404
    missing = await client.get(f"/api/v1/jobs/{job_id}/tasks/each/instances/7/attempts")
    assert missing.status_code == 404


async def test_a_job_of_one_for_each_task_ends_when_every_instance_has(
    running: Engine, target_server: TargetServer
) -> None:
    doc = mapped(target_server, list(range(7)), max_parallel=3)
    del doc["tasks"][1]
    job = await job_ends(running, await submit(running, doc))
    assert job["status"] == "succeeded"
    assert job["tasks"][0]["instances"]["succeeded"] == 7
    assert len(target_server.requests) == 7


async def test_an_instance_lost_too_often_fails_its_task(
    engine: Engine, target_server: TargetServer
) -> None:
    store = store_of(engine)
    job_id = await submit(engine, mapped(target_server, [1, 2, 3]))
    (parent,) = await store.claim(worker="w1", limit=1, lease_seconds=30)
    assert await store.expand(parent, [1, 2, 3], 0, 3)
    first, *_ = await store.claim(worker="w1", limit=1, lease_seconds=30)
    assert first.spec.parent_id == parent.id
    await store.reap(max_rescues=0, now=time.time() + 60)
    job = await engine.get_job(job_id)
    assert job["status"] == "failed"
    assert [t["status"] for t in job["tasks"]] == ["failed", "skipped"]
    page = await engine.get_instances(job_id, "each")
    assert [i["status"] for i in page["items"]] == ["failed", "canceled", "canceled"]


async def test_instances_are_sealed_at_rest_with_a_secret_key(
    db_url: str, target_server: TargetServer
) -> None:
    from cryptography.fernet import Fernet
    from sqlalchemy import select

    from engine.store.tables import tasks

    sealed = await Engine.open(make_config(db_url, secret_keys=(Fernet.generate_key().decode(),)))
    sealed.start_worker()
    try:
        doc = mapped(target_server, [1, 2])
        doc["tasks"][0]["headers"] = {"X-Token": "s3cret"}
        job = await job_ends(sealed, await submit(sealed, doc))
        async with store_of(sealed).read() as conn:
            specs = [r.spec for r in await conn.execute(select(tasks.c.spec))]
    finally:
        await sealed.close()
    assert job["status"] == "succeeded"
    assert [r.header("x-token") for r in target_server.requests[:2]] == ["s3cret", "s3cret"]
    assert len(specs) == 4 and not any("s3cret" in orjson.dumps(s).decode() for s in specs)


async def test_the_events_of_a_for_each_job_tell_the_parent_task_end(
    running: Engine, target_server: TargetServer
) -> None:
    """The parent's end is written by the instance accounting, not by the outcome path: its
    event must be streamed too, and the stream ends with the job."""
    job_id = await submit(running, mapped(target_server, [1, 2, 3]))
    messages = [m async for m in running.job_events(job_id)]
    changes = [(m.get("task", "job"), m["status"]) for m in messages if m["type"] != "snapshot"]
    assert ("each", "succeeded") in changes
    assert changes.index(("each", "succeeded")) < changes.index(("after", "queued"))
    assert changes[-1] == ("job", "succeeded")


async def test_the_events_of_a_failed_for_each_task_carry_its_error(
    running: Engine, target_server: TargetServer
) -> None:
    doc = mapped(target_server, [200, 500, 200], max_parallel=1)
    doc["tasks"][0]["url"] = target_server.url("/status/{{ item }}")
    job_id = await submit(running, doc)
    messages = [m async for m in running.job_events(job_id)]
    (failed,) = [m for m in messages if m.get("task") == "each" and m["status"] == "failed"]
    assert failed["error"]["type"] == "instance_failed"
    assert messages[-1]["type"] == "job" and messages[-1]["status"] == "failed"
