"""for_each end to end: real SQLite file, real local target that counts the calls."""

from __future__ import annotations

from typing import Any

import orjson

from engine import Engine
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
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


async def test_an_empty_list_succeeds_with_an_empty_output(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(running, mapped(target_server, []))
    job = await job_ends(running, job_id)
    assert job["status"] == "succeeded"
    result = await running.get_result(job_id)
    assert result["tasks"]["each"]["response_body"] == []
    assert result["tasks"]["after"]["response_body"]["body"] == {"n": 0}
