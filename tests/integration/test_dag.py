"""DAG jobs end to end: real SQLite file, real local HTTP server, the embedded worker."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select, update

from engine import Engine
from engine.store.tables import tasks
from engine.store.writer import WriteOp
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.store import store_of
from tests.support.waiting import api_job_ends, job_ends


async def submit(engine: Engine, doc: dict[str, Any]) -> str:
    return (await engine.submit(parse_job_document(doc))).job_id


def task(name: str, url: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "url": url, **fields}


async def statuses(engine: Engine, job_id: str) -> dict[str, str]:
    return {t["name"]: t["status"] for t in (await engine.get_job(job_id))["tasks"]}


async def test_diamond_passes_typed_data_downstream(
    running: Engine, target_server: TargetServer
) -> None:
    echo = target_server.url("/echo")
    job_id = await submit(
        running,
        {
            "name": "diamond",
            "params": {"who": "cats"},
            "tasks": [
                task("a", target_server.url("/json"), params={"q": "{{ params.who }}"}),
                task(
                    "b",
                    echo,
                    method="POST",
                    body={"items": "{{ tasks.a.output['items'] }}", "job": "{{ job.id }}"},
                ),
                task("c", echo, method="POST", body={"first": "{{ tasks.a.output['items'][0] }}"}),
                task(
                    "d",
                    echo,
                    method="POST",
                    body={
                        "b": "{{ tasks.b.output.body['items'] }}",
                        "c": "n={{ tasks.c.status_code }}",
                    },
                ),
            ],
        },
    )
    assert (await job_ends(running, job_id))["status"] == "succeeded"
    result = await running.get_result(job_id)
    assert result["tasks"]["b"]["response_body"]["body"] == {"items": [1, 2, 3], "job": job_id}
    assert result["tasks"]["c"]["response_body"]["body"] == {"first": 1}
    assert result["response_body"]["body"] == {"b": [1, 2, 3], "c": "n=200"}, "sink at top level"
    graph = await running.get_graph(job_id)
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert edges == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}, "edges implied by templates"


async def test_fan_out_runs_concurrently_and_fan_in_waits_for_all(
    running: Engine, target_server: TargetServer
) -> None:
    fan = [
        task(f"t{i}", target_server.url(f"/slow?seconds=0.1&i={i}"), depends_on=["root"])
        for i in range(50)
    ]
    job_id = await submit(
        running,
        {
            "tasks": [
                task("root", target_server.url("/json")),
                *fan,
                task(
                    "sink",
                    target_server.url("/json?sink=1"),
                    depends_on=[f"t{i}" for i in range(50)],
                ),
            ]
        },
    )
    assert (await job_ends(running, job_id, timeout=30))["status"] == "succeeded"
    assert target_server.max_in_flight == running.config.concurrency
    assert target_server.requests[-1].raw_query == "sink=1"
    async with store_of(running).read() as conn:
        rows = (
            await conn.execute(
                select(tasks.c.name, tasks.c.started_at, tasks.c.finished_at).where(
                    tasks.c.job_id == job_id
                )
            )
        ).all()
    sink_start = next(r.started_at for r in rows if r.name == "sink")
    assert sink_start >= max(r.finished_at for r in rows if r.name != "sink")


async def test_chain_of_twenty(running: Engine, target_server: TargetServer) -> None:
    echo = target_server.url("/echo")
    chain = [task("n0", echo, method="POST", body={"v": 0})]
    for i in range(1, 20):
        chain.append(
            task(
                f"n{i}",
                echo,
                method="POST",
                body={"v": f"{{{{ tasks.n{i - 1}.output.body.v + 1 }}}}"},
            )
        )
    job_id = await submit(running, {"tasks": chain})
    assert (await job_ends(running, job_id, timeout=30))["status"] == "succeeded"
    assert (await running.get_result(job_id))["response_body"]["body"] == {"v": 19}, (
        "an expression yields a number"
    )


async def test_failure_skips_downstream_and_other_branch_finishes(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(
        running,
        {
            "tasks": [
                task("bad", target_server.url("/status/500")),
                task("after_bad", target_server.url("/json"), depends_on=["bad"]),
                task("deeper", target_server.url("/json"), depends_on=["after_bad"]),
                task("good", target_server.url("/slow?seconds=0.3")),
                task("after_good", target_server.url("/json?g=1"), depends_on=["good"]),
            ]
        },
    )
    assert (await job_ends(running, job_id))["status"] == "failed"
    assert await statuses(running, job_id) == {
        "bad": "failed",
        "after_bad": "skipped",
        "deeper": "skipped",
        "good": "succeeded",
        "after_good": "succeeded",
    }


async def test_retry_reruns_failed_and_skipped_and_keeps_succeeded(
    running: Engine, target_server: TargetServer, client: httpx.AsyncClient
) -> None:
    job_id = await submit(
        running,
        {
            "tasks": [
                task("ok", target_server.url("/json?once=1")),
                task("flaky", target_server.url("/flaky/dag?fail=1"), depends_on=["ok"]),
                task("last", target_server.url("/json?last=1"), depends_on=["flaky"]),
            ]
        },
    )
    assert (await job_ends(running, job_id))["status"] == "failed"
    assert (await client.post(f"/api/v1/jobs/{job_id}/retry")).status_code == 200
    assert (await api_job_ends(client, job_id))["status"] == "succeeded"
    queries = [r.raw_query for r in target_server.requests]
    assert queries.count("once=1") == 1, "a succeeded task is not run again"
    assert queries.count("last=1") == 1
    conflict = await client.post(f"/api/v1/jobs/{job_id}/retry")
    assert conflict.status_code == 409


async def test_when_false_skips_and_downstream_still_runs(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(
        running,
        {
            "tasks": [
                task("search", target_server.url("/json")),
                task(
                    "if_many",
                    target_server.url("/json?many=1"),
                    when="tasks.search.output['items'] | length > 2",
                ),
                task(
                    "if_none",
                    target_server.url("/json?none=1"),
                    when="tasks.search.output['items'] | length == 0",
                ),
                task(
                    "after", target_server.url("/json?after=1"), depends_on=["if_many", "if_none"]
                ),
            ]
        },
    )
    assert (await job_ends(running, job_id))["status"] == "succeeded"
    assert await statuses(running, job_id) == {
        "search": "succeeded",
        "if_many": "succeeded",
        "if_none": "skipped",
        "after": "succeeded",
    }
    assert "none=1" not in [r.raw_query for r in target_server.requests]


async def test_all_done_trigger_rule_runs_after_a_failure(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(
        running,
        {
            "tasks": [
                task("bad", target_server.url("/status/500")),
                task(
                    "cleanup",
                    target_server.url("/json"),
                    depends_on=["bad"],
                    trigger_rule="all_done",
                ),
            ]
        },
    )
    assert (await job_ends(running, job_id))["status"] == "failed"
    assert await statuses(running, job_id) == {"bad": "failed", "cleanup": "succeeded"}


async def test_task_ttl_expires_a_slow_task(running: Engine, target_server: TargetServer) -> None:
    job_id = await submit(
        running,
        {
            "tasks": [
                task("slow", target_server.url("/slow?seconds=10"), ttl_seconds=0.3),
                task("next", target_server.url("/json"), depends_on=["slow"]),
            ]
        },
    )
    assert (await job_ends(running, job_id))["status"] == "failed"
    result = await running.get_result(job_id)
    assert result["tasks"]["slow"]["error"]["type"] == "expired"
    assert result["tasks"]["next"]["status"] == "skipped"


async def test_expiry_stops_retries(running: Engine, target_server: TargetServer) -> None:
    job_id = await submit(
        running,
        {
            "tasks": [
                task(
                    "flaky",
                    target_server.url("/status/503"),
                    max_attempts=50,
                    backoff_strategy="fixed",
                    backoff_seconds=0.2,
                    ttl_seconds=0.5,
                )
            ]
        },
    )
    assert (await job_ends(running, job_id))["status"] == "failed"
    result = await running.get_result(job_id)
    assert result["error"]["type"] == "expired"
    assert len(await running.get_attempts(job_id, "flaky")) < 50


async def test_cancel_running_dag(running: Engine, target_server: TargetServer) -> None:
    job_id = await submit(
        running,
        {
            "tasks": [
                task("slow1", target_server.url("/slow?seconds=30&a=1")),
                task("slow2", target_server.url("/slow?seconds=30&a=2")),
                task("after", target_server.url("/json"), depends_on=["slow1", "slow2"]),
            ]
        },
    )
    await target_server.wait_until(lambda: target_server.state.in_flight == 2)
    assert await running.cancel(job_id) == "canceled"
    await target_server.wait_idle(timeout=3)
    assert set((await statuses(running, job_id)).values()) == {"canceled"}


async def test_render_error_fails_the_task_not_the_worker(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(
        running,
        {
            "tasks": [
                task("a", target_server.url("/json")),
                task(
                    "b",
                    target_server.url("/echo"),
                    method="POST",
                    body={"x": "{{ tasks.a.output.missing }}"},
                ),
            ]
        },
    )
    assert (await job_ends(running, job_id))["status"] == "failed"
    error = (await running.get_result(job_id))["tasks"]["b"]["error"]
    assert error["type"] == "template" and "missing" in error["message"]
    other = await submit(running, {"tasks": [task("z", target_server.url("/json"))]})
    assert (await job_ends(running, other))["status"] == "succeeded", "the worker still works"


async def test_worker_restart_in_the_middle_of_a_dag(
    db_url: str, target_server: TargetServer
) -> None:
    first = await Engine.open(make_config(db_url, shutdown_grace=0.1))
    job_id = await submit(
        first,
        {
            "tasks": [
                task("a", target_server.url("/json?a=1")),
                task("b", target_server.url("/slow?seconds=30"), depends_on=["a"]),
                task(
                    "c",
                    target_server.url("/echo"),
                    method="POST",
                    body={"got": "{{ tasks.a.output['items'] }}"},
                    depends_on=["b"],
                ),
            ]
        },
    )
    first.start_worker()
    await target_server.wait_until(lambda: target_server.state.in_flight == 1)
    await first.close()
    target_server.reset()

    second = await Engine.open(make_config(db_url))
    try:
        await store_of(second).write(_RewriteUrl(job_id, "b", target_server.url("/json?b=1")))
        await second.run_worker(burst=True)
        assert (await second.get_job(job_id))["status"] == "succeeded"
        assert "a=1" not in [r.raw_query for r in target_server.requests], "a's output was kept"
        result = await second.get_result(job_id)
        assert result["response_body"]["body"] == {"got": [1, 2, 3]}
    finally:
        await second.close()


class _RewriteUrl(WriteOp[None]):
    """Point a stored task at a fast endpoint (the slow call was what the restart interrupted)."""

    batchable = False

    def __init__(self, job_id: str, name: str, url: str) -> None:
        self.job_id, self.name, self.url = job_id, name, url

    async def apply(self, conn: Any) -> None:
        spec = (
            await conn.execute(
                select(tasks.c.spec).where(tasks.c.job_id == self.job_id, tasks.c.name == self.name)
            )
        ).scalar_one()
        await conn.execute(
            update(tasks)
            .where(tasks.c.job_id == self.job_id, tasks.c.name == self.name)
            .values(spec={**spec, "url": self.url})
        )


async def test_graph_and_mermaid_over_rest(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    doc = {
        "tasks": [
            task("a", target_server.url("/json")),
            task("b", target_server.url("/json"), depends_on=["a"]),
        ]
    }
    job_id = (await client.post("/api/v1/jobs", json=doc)).json()["job_id"]
    graph = (await client.get(f"/api/v1/jobs/{job_id}/graph")).json()
    assert graph["nodes"] == [{"name": "a", "status": "queued"}, {"name": "b", "status": "pending"}]
    assert graph["edges"] == [{"from": "a", "to": "b"}]
    mermaid = await client.get(f"/api/v1/jobs/{job_id}/graph?format=mermaid")
    assert mermaid.status_code == 200
    assert "a" in mermaid.text and "-->" in mermaid.text
    detail = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    assert detail["method"] is None and detail["attempt"] is None
    assert [t["name"] for t in detail["tasks"]] == ["a", "b"]


async def test_invalid_graph_reports_every_problem_at_once(client: httpx.AsyncClient) -> None:
    doc = {
        "tasks": [
            {"name": "a", "url": "http://127.0.0.1/", "depends_on": ["c"]},
            {"name": "b", "url": "http://127.0.0.1/", "depends_on": ["ghost"]},
            {"name": "c", "url": "http://127.0.0.1/{{ tasks.a.output.x }}"},
            {"name": "b", "url": "http://127.0.0.1/"},
            {"name": "d", "url": "http://127.0.0.1/{{ broken"},
            {"name": "e", "url": "http://127.0.0.1/{{ tasks.nobody.output }}"},
        ]
    }
    response = await client.post("/api/v1/jobs", json=doc)
    assert response.status_code == 422
    errors = response.json()["detail"]["errors"]
    codes = {e["code"] for e in errors}
    assert {"cycle", "unknown_dependency", "duplicate_task", "template_syntax"} <= codes
    assert "unknown_task_reference" in codes
    cycle = next(e for e in errors if e["code"] == "cycle")
    assert "a" in cycle["message"] and "c" in cycle["message"]
    unknown = next(e for e in errors if e["code"] == "unknown_dependency")
    assert unknown["location"] == "/tasks/1/depends_on/0"
    validate = await client.post("/api/v1/jobs/validate", json=doc)
    assert validate.status_code == 422
    assert (await client.get("/api/v1/jobs")).json()["items"] == [], "nothing was stored"
