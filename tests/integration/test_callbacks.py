"""Callback tasks end to end: a real remote system (``CallbackTarget``) that keeps the callback
URL and calls it later from a thread of its own, a real REST server on the same database that
takes the callback, and the test's engine running the worker."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.main import create_app
from api.settings import Settings
from engine import Conflict, Engine, EngineConfig, JobInvalid, NotFound
from engine.store.tables import callbacks, tasks
from schemas.callbacks import CallbackAnswer
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.callback_target import CallbackTarget, WebhookReceiver
from tests.support.config import make_config
from tests.support.store import store_of
from tests.support.threaded_server import ThreadedServer
from tests.support.waiting import job_ends, until

OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["n"],
    "properties": {"n": {"type": "integer"}},
}


@pytest.fixture
def remote() -> Iterator[CallbackTarget]:
    with CallbackTarget() as server:
        yield server


@pytest.fixture
def callback_api(db_url: str) -> Iterator[ThreadedServer]:
    """The REST app on the test's database, without a worker: it only takes callbacks."""
    settings = Settings(db_url=db_url, embedded_worker=False, log_level="warning")
    with ThreadedServer(create_app(settings), name="callback-api", lifespan="on") as server:
        yield server


@pytest.fixture
def config(db_url: str, callback_api: ThreadedServer) -> EngineConfig:
    return make_config(db_url, public_url=callback_api.base_url)


def callback_job(remote: CallbackTarget, target: TargetServer, **task: Any) -> dict[str, Any]:
    work = {
        "name": "work",
        "method": "POST",
        "url": remote.url("/work"),
        "body": {"url": "{{ callback.url }}", "token": "{{ callback.token }}"},
        "callback": {"timeout_sec": 30},
        "output_schema": OUTPUT_SCHEMA,
        **task,
    }
    use = {
        "name": "use",
        "method": "POST",
        "url": target.url("/echo"),
        "body": {"n": "{{ tasks.work.output.n }}"},
    }
    return {"name": "cb", "tasks": [work, use]}


async def submit(engine: Engine, doc: dict[str, Any]) -> str:
    return (await engine.submit(parse_job_document(doc))).job_id


async def task_status(engine: Engine, job_id: str, name: str) -> str:
    detail = await engine.get_job(job_id)
    return next(t["status"] for t in detail["tasks"] if t["name"] == name)


async def waits(engine: Engine, job_id: str, name: str = "work") -> None:
    async def check() -> bool:
        return await task_status(engine, job_id, name) == "waiting"

    await until(check, timeout=15)


async def test_waiting_task_finishes_with_the_callback_and_its_output_flows_downstream(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    job_id = await submit(running, callback_job(remote, target_server))
    await waits(running, job_id)
    detail = await running.get_job(job_id)
    assert detail["status"] == "running"
    graph = await running.get_graph(job_id)
    assert {n["name"]: n["status"] for n in graph["nodes"]} == {"work": "waiting", "use": "pending"}
    result = await running.get_result(job_id)
    assert result["tasks"]["work"]["status"] == "waiting"
    assert result["tasks"]["work"]["response_status"] == 202
    async with store_of(running).read() as conn:
        row = (await conn.execute(select(tasks).where(tasks.c.name == "work"))).one()
    assert row.lease_owner is None and row.lease_expires_at is None
    assert "jobqueue_tasks_waiting 1.0" in (await running.metrics_text()).decode()

    answer = await asyncio.to_thread(
        remote.call_back, 0, {"status": "succeeded", "output": {"n": 7}}
    )

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"job_id": job_id, "task": "work", "status": "succeeded"}
    CallbackAnswer.model_validate(answer.json())  # as /openapi.json documents it
    assert (await job_ends(running, job_id))["status"] == "succeeded"
    final = await running.get_result(job_id)
    assert final["tasks"]["work"]["response_body"] == {"n": 7}
    assert final["tasks"]["use"]["response_body"]["body"] == {"n": 7}
    attempts = await running.get_attempts(job_id, "work")
    assert [a["status"] for a in attempts] == ["succeeded"]
    metrics = (await running.metrics_text()).decode()
    assert "jobqueue_tasks_waiting 0.0" in metrics
    # this engine ran both calls; the callback (and its count) went to the server's engine
    assert 'jobqueue_attempts_total{outcome="succeeded"} 1.0' in metrics
    assert 'outcome="waiting"' not in metrics


async def test_token_is_random_stored_hashed_and_works_once(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    job_id = await submit(running, callback_job(remote, target_server))
    await waits(running, job_id)
    (token,) = remote.tokens()
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    async with store_of(running).read() as conn:
        stored = (await conn.execute(select(callbacks))).all()
    assert [r.token_hash for r in stored] == [hashlib.sha256(token.encode()).hexdigest()]
    first = await asyncio.to_thread(
        remote.call_back, 0, {"status": "succeeded", "output": {"n": 1}}
    )
    assert first.status_code == 200

    again = await asyncio.to_thread(
        remote.call_back, 0, {"status": "succeeded", "output": {"n": 2}}
    )

    assert again.status_code == 409, again.text
    assert again.json()["detail"]["code"] == "conflict"
    with pytest.raises(NotFound):
        await running.complete_callback(token[::-1] + "x", status="succeeded", output={"n": 1})
    assert (await job_ends(running, job_id))["status"] == "succeeded"
    assert (await running.get_result(job_id))["tasks"]["work"]["response_body"] == {"n": 1}


async def test_unknown_token_answers_404_and_a_bad_report_422(
    running: Engine, callback_api: ThreadedServer
) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=callback_api.base_url) as http:
        unknown = await http.post("/api/v1/callbacks/nope", json={"status": "succeeded"})
        bad = await http.post("/api/v1/callbacks/nope", json={"status": "done"})
        mixed = await http.post(
            "/api/v1/callbacks/nope", json={"status": "failed", "output": {"n": 1}}
        )
    assert unknown.status_code == 404
    assert bad.status_code == 422
    assert bad.json()["detail"]["errors"][0]["location"] == "/status"
    assert mixed.status_code == 422


async def test_output_that_breaks_the_output_schema_fails_the_task(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    job_id = await submit(running, callback_job(remote, target_server))
    await waits(running, job_id)

    answer = await asyncio.to_thread(
        remote.call_back, 0, {"status": "succeeded", "output": {"n": "seven"}}
    )

    assert answer.status_code == 200
    assert answer.json()["status"] == "failed"
    assert answer.json()["error"]["type"] == "output_invalid"
    assert (await job_ends(running, job_id))["status"] == "failed"
    result = await running.get_result(job_id)
    assert result["tasks"]["work"]["error"]["errors"][0]["pointer"] == "/n"
    assert result["tasks"]["use"]["status"] == "skipped"


async def test_reported_failure_fails_the_task_with_what_was_reported(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    job_id = await submit(running, callback_job(remote, target_server))
    await waits(running, job_id)

    answer = await asyncio.to_thread(
        remote.call_back, 0, {"status": "failed", "error": {"message": "out of stock"}}
    )

    assert answer.status_code == 200
    assert (await job_ends(running, job_id))["status"] == "failed"
    error = (await running.get_result(job_id))["tasks"]["work"]["error"]
    assert error["type"] == "callback_failed"
    assert error["message"] == "out of stock"
    assert error["reported"] == {"message": "out of stock"}


async def test_callback_timeout_retries_with_a_new_token_then_fails(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    doc = callback_job(
        remote,
        target_server,
        callback={"timeout_sec": 60},
        max_attempts=2,
        backoff_strategy="fixed",
        backoff_seconds=0.01,
    )
    job_id = await submit(running, doc)
    await waits(running, job_id)

    reaped = await running.reap(now=time.time() + 120)

    assert [(t.old.value, t.new.value, t.error_type) for t in reaped.transitions] == [
        ("waiting", "queued", "callback_timeout")
    ]
    await until(lambda: asyncio.sleep(0, len(remote.received) == 2), timeout=15)
    await waits(running, job_id)
    first, second = remote.tokens()
    assert first != second
    stale = await asyncio.to_thread(
        remote.call_back, 0, {"status": "succeeded", "output": {"n": 1}}
    )
    assert stale.status_code == 409

    await running.reap(now=time.time() + 120)

    assert (await job_ends(running, job_id))["status"] == "failed"
    result = await running.get_result(job_id)
    assert result["tasks"]["work"]["error"]["type"] == "callback_timeout"
    assert result["tasks"]["use"]["status"] == "skipped"
    attempts = await running.get_attempts(job_id, "work")
    assert [a["status"] for a in attempts] == ["callback_timeout", "callback_timeout"]
    late = await asyncio.to_thread(remote.call_back, 1, {"status": "succeeded", "output": {"n": 1}})
    assert late.status_code == 409


async def test_canceled_job_tokens_answer_409(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    job_id = await submit(running, callback_job(remote, target_server))
    await waits(running, job_id)

    assert await running.cancel(job_id) == "canceled"

    answer = await asyncio.to_thread(
        remote.call_back, 0, {"status": "succeeded", "output": {"n": 1}}
    )
    assert answer.status_code == 409
    assert "canceled" in answer.json()["detail"]["message"]
    assert (await running.get_result(job_id))["tasks"]["work"]["status"] == "canceled"


async def test_callback_that_arrives_before_the_answer_is_recorded_still_finishes_the_task(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    doc = callback_job(remote, target_server, url=remote.url("/work?inline=1"))
    job_id = await submit(running, doc)

    assert (await job_ends(running, job_id))["status"] == "succeeded"
    assert (await running.get_result(job_id))["tasks"]["use"]["response_body"]["body"] == {"n": 1}


async def test_waiting_task_holds_no_worker_slot(
    config: EngineConfig, remote: CallbackTarget, target_server: TargetServer
) -> None:
    one_slot = await Engine.open(replace(config, concurrency=1))
    one_slot.start_worker()
    try:
        waiting = await submit(one_slot, callback_job(remote, target_server))
        await waits(one_slot, waiting)
        other = await one_slot.submit(parse_job_document({"url": target_server.url("/json")}))
        assert (await job_ends(one_slot, other.job_id))["status"] == "succeeded"
        assert await task_status(one_slot, waiting, "work") == "waiting"
    finally:
        await one_slot.close()


async def test_callback_output_is_typed_by_the_output_schema_at_creation(
    engine: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    doc = callback_job(remote, target_server)
    doc["tasks"][1]["body"] = {"n": "{{ tasks.work.output.missing }}"}

    with pytest.raises(JobInvalid) as caught:
        await engine.validate(parse_job_document(doc))

    (problem,) = caught.value.errors
    assert problem.code == "unknown_output_path"
    assert problem.location == "/tasks/1/body/n"


async def test_engine_function_refuses_a_used_token(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    job_id = await submit(running, callback_job(remote, target_server))
    await waits(running, job_id)
    (token,) = remote.tokens()
    done = await running.complete_callback(token, status="succeeded", output={"n": 3})
    assert done["status"] == "succeeded"
    with pytest.raises(Conflict):
        await running.complete_callback(token, status="succeeded", output={"n": 3})


async def test_waiting_task_and_pending_delivery_survive_engine_restarts(
    config: EngineConfig, remote: CallbackTarget, target_server: TargetServer
) -> None:
    cfg = replace(config, webhook_backoff_seconds=0.05, webhook_poll_interval=0.05)
    with WebhookReceiver(fail_first=10**6) as receiver:
        doc = callback_job(remote, target_server)
        doc["on_complete"] = {"url": receiver.url("/hook")}

        first = await Engine.open(cfg)
        first.start_worker()
        try:
            job_id = await submit(first, doc)
            await waits(first, job_id)
        finally:
            await first.close()

        second = await Engine.open(cfg)
        second.start_worker()
        try:
            report = {"status": "succeeded", "output": {"n": 5}}
            answer = await asyncio.to_thread(remote.call_back, 0, report)
            assert answer.status_code == 200, answer.text
            assert (await job_ends(second, job_id))["status"] == "succeeded"

            async def tried() -> bool:
                found = (await second.get_webhooks(job_id))["deliveries"]
                return bool(found and found[0]["attempts"])

            await until(tried, timeout=15)
        finally:
            await second.close()
        (pending,) = await _webhooks(cfg, job_id)
        assert pending["status"] == "pending" and pending["attempts"], pending
        receiver.fail_first = 0

        third = await Engine.open(cfg)
        third.start_worker()
        try:

            async def delivered() -> bool:
                found = (await third.get_webhooks(job_id))["deliveries"]
                return found[0]["status"] == "delivered"

            await until(delivered, timeout=15)
            result = await third.get_result(job_id)
        finally:
            await third.close()
    assert result["tasks"]["use"]["response_body"]["body"] == {"n": 5}
    assert b'"status":"succeeded"' in receiver.received[-1]["body"]


async def _webhooks(cfg: EngineConfig, job_id: str) -> list[dict[str, Any]]:
    reader = await Engine.open(cfg)
    try:
        found: list[dict[str, Any]] = (await reader.get_webhooks(job_id))["deliveries"]
        return found
    finally:
        await reader.close()


async def test_cli_completes_callbacks_over_http_and_on_the_database(
    running: Engine,
    remote: CallbackTarget,
    target_server: TargetServer,
    callback_api: ThreadedServer,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await submit(running, callback_job(remote, target_server))
    await waits(running, first)
    second = await submit(running, callback_job(remote, target_server))
    await until(lambda: asyncio.sleep(0, len(remote.received) == 2), timeout=15)
    await waits(running, second)
    token_of = dict(zip((first, second), remote.tokens(), strict=True))
    output = tmp_path / "out.json"
    output.write_text('{"n": 9}')
    server = ["--server", callback_api.base_url]
    cli = CliRunner()

    def invoke(*args: str) -> Any:
        return cli.invoke(cli_app, ["callbacks", "complete", *args])

    done = await asyncio.to_thread(invoke, token_of[first], "--output", str(output), *server)
    monkeypatch.setenv("JOBQUEUE_DB_URL", db_url)
    failed = await asyncio.to_thread(invoke, token_of[second], "--fail", "no stock", "--local")
    again = await asyncio.to_thread(invoke, token_of[first], "--output", str(output), *server)
    neither = await asyncio.to_thread(invoke, token_of[first], *server)

    assert done.exit_code == 0, done.output
    assert f"job {first} task work: succeeded" in done.output
    assert failed.exit_code == 1, failed.output
    assert "callback_failed" in failed.output
    assert again.exit_code == 1 and "conflict" in again.output
    assert neither.exit_code == 2 and "--output" in neither.output
    assert (await job_ends(running, first))["status"] == "succeeded"
    assert (await running.get_result(first))["tasks"]["use"]["response_body"]["body"] == {"n": 9}
    assert (await job_ends(running, second))["status"] == "failed"


async def test_callback_variables_in_a_task_without_callback_are_refused_at_creation(
    engine: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    doc = callback_job(remote, target_server)
    del doc["tasks"][0]["callback"]

    with pytest.raises(JobInvalid) as caught:
        await engine.validate(parse_job_document(doc))

    problems = caught.value.errors
    assert [(p.code, p.task, p.location) for p in problems] == [
        ("unknown_variable", "work", "/tasks/0/body/url"),
        ("unknown_variable", "work", "/tasks/0/body/token"),
    ]
    doc["tasks"][0]["callback"] = {"timeout_sec": 5}
    doc["tasks"][0]["headers"] = {"X-Cb": "{{ callback.tokn }}"}
    with pytest.raises(JobInvalid) as caught:
        await engine.validate(parse_job_document(doc))
    (problem,) = caught.value.errors
    assert (problem.code, problem.location) == ("unknown_variable", "/tasks/0/headers/X-Cb")


async def test_the_events_stream_tells_waiting_the_callback_and_a_timeout(
    running: Engine, remote: CallbackTarget, target_server: TargetServer
) -> None:
    """A callback ends its task outside the outcome path, and so does the reaper's timeout:
    both changes are streamed like any other."""
    doc = callback_job(
        remote, target_server, max_attempts=2, backoff_strategy="fixed", backoff_seconds=0.01
    )
    job_id = await submit(running, doc)
    await waits(running, job_id)
    await running.reap(now=time.time() + 120)  # the first token times out; a retry waits again
    await until(lambda: asyncio.sleep(0, len(remote.received) == 2), timeout=15)
    await waits(running, job_id)
    answer = await asyncio.to_thread(
        remote.call_back, 1, {"status": "succeeded", "output": {"n": 3}}
    )
    assert answer.status_code == 200, answer.text
    messages = [m async for m in running.job_events(job_id, after=0)]
    work = [(m["status"], m["error"]) for m in messages if m.get("task") == "work"]
    statuses = [status for status, _ in work]
    assert statuses.count("waiting") == 2
    timed_out = statuses.index("waiting") + 1
    assert work[timed_out][0] == "queued"
    assert work[timed_out][1]["type"] == "callback_timeout"
    assert statuses[-1] == "succeeded"
    assert messages[-1]["type"] == "job" and messages[-1]["status"] == "succeeded"
