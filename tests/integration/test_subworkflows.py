"""Sub-workflows end to end: a task runs a stored definition as a child job. Real SQLite file,
real local target, the embedded worker."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from engine import Engine, JobInvalid
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.waiting import job_ends, until

ECHO_OUT = {
    "type": "object",
    "properties": {"body": {"type": "object", "properties": {"id": {"type": "integer"}}}},
}


async def put_enrich(engine: Engine, target: TargetServer, path: str = "/echo") -> None:
    await engine.put_workflow(
        "enrich-one",
        {
            "params_schema": {
                "type": "object",
                "properties": {"id": {"type": "integer"}},
                "required": ["id"],
            },
            "tasks": [
                {
                    "name": "enrich",
                    "method": "POST",
                    "url": target.url(path),
                    "body": {"id": "{{ params.id }}"},
                    "output_schema": ECHO_OUT,
                }
            ],
        },
    )


def parent(target: TargetServer, **call: Any) -> dict[str, Any]:
    return {
        "name": "parent",
        "tasks": [
            {"name": "each", "workflow": {"name": "enrich-one", "params": {"id": 7}, **call}},
            {
                "name": "after",
                "method": "POST",
                "url": target.url("/echo"),
                "body": {"got": "{{ tasks.each.output.body.id }}"},
            },
        ],
    }


async def submit(engine: Engine, doc: dict[str, Any]) -> str:
    return (await engine.submit(parse_job_document(doc))).job_id


async def test_a_child_job_runs_and_its_result_feeds_downstream(
    running: Engine, target_server: TargetServer
) -> None:
    await put_enrich(running, target_server)
    job_id = await submit(running, parent(target_server))
    job = await job_ends(running, job_id)
    assert job["status"] == "succeeded", job
    each = job["tasks"][0]
    child = await running.get_job(each["child_job_id"])
    assert child["status"] == "succeeded"
    assert child["parent"] == {"job_id": job_id, "task": "each"}
    assert child["workflow"] == {"name": "enrich-one", "version": 1}
    result = await running.get_result(job_id)
    assert result["tasks"]["each"]["response_body"]["body"] == {"id": 7}
    assert result["tasks"]["after"]["response_body"]["body"] == {"got": 7}
    assert len(target_server.requests) == 2


async def test_a_failed_child_fails_the_task_and_a_retry_starts_a_new_child(
    running: Engine, target_server: TargetServer
) -> None:
    await put_enrich(running, target_server, "/flaky/child?fail=1")
    doc = parent(target_server)
    del doc["tasks"][1]
    job_id = await submit(running, doc)
    job = await job_ends(running, job_id)
    assert job["status"] == "failed"
    first_child = job["tasks"][0]["child_job_id"]
    result = await running.get_result(job_id)
    error = result["tasks"]["each"]["error"]
    assert error["type"] == "subworkflow_failed" and error["job_id"] == first_child
    await running.retry(job_id)
    job = await job_ends(running, job_id)
    assert job["status"] == "succeeded"
    assert job["tasks"][0]["child_job_id"] != first_child


async def test_canceling_the_parent_cancels_its_running_child(
    running: Engine, target_server: TargetServer
) -> None:
    await put_enrich(running, target_server, "/slow?seconds=30")
    job_id = await submit(running, parent(target_server))
    await target_server.wait_until(lambda: target_server.in_flight == 1)
    detail = await running.get_job(job_id)
    child_id = detail["tasks"][0]["child_job_id"]
    assert await running.cancel(job_id) == "canceled"
    assert (await running.get_job(child_id))["status"] == "canceled"
    await target_server.wait_idle()


async def test_canceling_the_child_fails_the_waiting_task(
    running: Engine, target_server: TargetServer
) -> None:
    await put_enrich(running, target_server, "/slow?seconds=30")
    job_id = await submit(running, parent(target_server))
    await target_server.wait_until(lambda: target_server.in_flight == 1)
    child_id = (await running.get_job(job_id))["tasks"][0]["child_job_id"]
    await running.cancel(child_id)
    job = await job_ends(running, job_id)
    assert job["status"] == "failed"
    error = (await running.get_result(job_id))["tasks"]["each"]["error"]
    assert error == {
        "type": "subworkflow_failed",
        "message": f"the child job {child_id} ended canceled",
        "job_id": child_id,
        "status": "canceled",
    }


async def test_one_child_job_per_item(running: Engine, target_server: TargetServer) -> None:
    await put_enrich(running, target_server)
    doc = parent(target_server)
    doc["params"] = {"ids": [1, 2, 3]}
    doc["tasks"][0] = {
        "name": "each",
        "for_each": "{{ params.ids }}",
        "workflow": {"name": "enrich-one", "params": {"id": "{{ item }}"}},
    }
    doc["tasks"][1]["body"] = {"got": "{{ tasks.each.output | map(attribute='body') | list }}"}
    job = await job_ends(running, await submit(running, doc))
    assert job["status"] == "succeeded", job
    page = await running.get_instances(job["job_id"], "each")
    children = [i["child_job_id"] for i in page["items"]]
    assert [(await running.get_job(c))["parent"]["task"] for c in children] == [
        "each[0]",
        "each[1]",
        "each[2]",
    ]
    result = await running.get_result(job_id := job["job_id"])
    assert [o["body"]["id"] for o in result["tasks"]["each"]["response_body"]] == [1, 2, 3]
    sent = sorted(orjson.loads(r.body).get("id", 0) for r in target_server.requests)
    assert sent[-3:] == [1, 2, 3]
    assert job_id


async def test_nesting_beyond_the_depth_limit_fails_the_task(
    running: Engine, target_server: TargetServer
) -> None:
    await put_enrich(running, target_server)
    for level in range(6):
        inner = "enrich-one" if level == 0 else f"level{level - 1}"
        await running.put_workflow(
            f"level{level}",
            {"tasks": [{"name": "call", "workflow": {"name": inner, "params": {"id": 1}}}]},
        )
    job = await job_ends(running, await submit(running, parent(target_server, name="level5")))
    assert job["status"] == "failed"

    async def deepest_error() -> Any:
        page = await running.list_jobs(__import__("engine").JobFilter(), limit=100)
        failed = [j for j in page["items"] if j["status"] == "failed"]
        for item in failed:
            result = await running.get_result(item["job_id"])
            for task in result["tasks"].values():
                if (task["error"] or {}).get("type") == "max_depth":
                    return task["error"]
        return None

    assert (await until(deepest_error))["type"] == "max_depth"


async def test_creation_time_checks_of_a_sub_workflow(
    engine: Engine, target_server: TargetServer
) -> None:
    with pytest.raises(JobInvalid) as unknown:
        await engine.validate(parse_job_document(parent(target_server)))
    (error,) = unknown.value.errors
    assert error.code == "unknown_workflow" and error.location == "/tasks/0/workflow/name"

    await put_enrich(engine, target_server)
    doc = parent(target_server)
    doc["tasks"][0]["workflow"]["params"] = {"id": "seven"}
    doc["tasks"][1]["body"] = {"got": "{{ tasks.each.output.body.idd }}"}
    with pytest.raises(JobInvalid) as bad:
        await engine.validate(parse_job_document(doc))
    found = {(p.code, p.location) for p in bad.value.errors}
    assert found == {
        ("invalid_input_literal", "/tasks/0/workflow/params/id"),
        ("unknown_output_path", "/tasks/1/body/got"),
    }
    missing = parent(target_server)
    missing["tasks"][0]["workflow"]["params"] = {}
    with pytest.raises(JobInvalid) as absent:
        await engine.validate(parse_job_document(missing))
    assert [p.code for p in absent.value.errors] == ["missing_input_property"]
    with pytest.raises(JobInvalid) as version:
        await engine.validate(parse_job_document(parent(target_server, version=9)))
    assert version.value.errors[0].location == "/tasks/0/workflow/version"


async def test_definitions_that_call_each_other_in_a_circle_are_refused(
    engine: Engine, target_server: TargetServer
) -> None:
    await put_enrich(engine, target_server)
    call = {"tasks": [{"name": "call", "workflow": {"name": "enrich-one", "params": {"id": 1}}}]}
    await engine.put_workflow("a", call)
    await engine.put_workflow("b", {"tasks": [{"name": "call", "workflow": {"name": "a"}}]})
    with pytest.raises(JobInvalid) as circle:
        await engine.put_workflow("a", {"tasks": [{"name": "call", "workflow": {"name": "b"}}]})
    (error,) = circle.value.errors
    assert error.code == "circular_workflow" and error.actual == ["a", "b", "a"]
    from engine import Conflict

    with pytest.raises(Conflict):
        await engine.delete_workflow("a")
    await engine.delete_workflow("b")
    await engine.delete_workflow("a")


async def test_the_events_of_the_parent_tell_the_task_that_waited_for_its_child(
    running: Engine, target_server: TargetServer
) -> None:
    """The sub-workflow task ends in the child's transaction, not by an outcome: its event is
    streamed all the same."""
    await put_enrich(running, target_server)
    job_id = await submit(running, parent(target_server))
    messages = [m async for m in running.job_events(job_id)]
    changes = [(m.get("task", "job"), m["status"]) for m in messages if m["type"] != "snapshot"]
    assert ("each", "succeeded") in changes
    assert changes.index(("each", "succeeded")) < changes.index(("after", "queued"))
    assert changes[-1] == ("job", "succeeded")
