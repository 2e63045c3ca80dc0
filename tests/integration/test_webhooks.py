"""Completion webhooks against a real receiver on 127.0.0.1: enqueued with the job's end,
delivered by the workers' sender with retries, signed, listed, never changing the job."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import Engine, EngineConfig
from schemas.callbacks import WebhookDeliveries
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.api_server import ApiServer
from tests.support.callback_target import WebhookReceiver
from tests.support.config import make_config
from tests.support.waiting import job_ends, until

SECRET = "s3cret-for-tests"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


@pytest.fixture
def config(db_url: str) -> EngineConfig:
    return make_config(
        db_url,
        webhook_secret=SECRET,
        webhook_backoff_seconds=0.05,
        webhook_poll_interval=0.05,
        webhook_timeout=5.0,
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(fail_first=1) as server:
        yield server


def documented_verify() -> Callable[..., Any]:
    """The receiver example of docs/workflows.md, run as a reader would copy it."""
    text = DOCS.read_text()
    section = text[text.index("### Verifying a webhook") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "no python block under 'Verifying a webhook'"
    assert len(code.group(1).strip().splitlines()) <= 12
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    verify: Callable[..., Any] = namespace["verify"]
    return verify


def job(target: TargetServer, receiver: WebhookReceiver, **hook: Any) -> dict[str, Any]:
    return {
        "name": "hooked",
        "on_complete": {"url": receiver.url("/hook"), "headers": {"X-Team": "a"}, **hook},
        "tasks": [{"name": "t", "url": target.url("/json")}],
    }


async def submit(engine: Engine, doc: dict[str, Any]) -> str:
    return (await engine.submit(parse_job_document(doc))).job_id


async def deliveries(engine: Engine, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await engine.get_webhooks(job_id))["deliveries"]
    return items


async def delivered(engine: Engine, job_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = await deliveries(engine, job_id)
        return found[0] if found and found[0]["status"] != "pending" else None

    done: dict[str, Any] = await until(check, timeout=20)
    return done


async def test_receiver_that_fails_once_gets_a_signed_retry_and_every_try_is_listed(
    running: Engine,
    client: httpx.AsyncClient,
    target_server: TargetServer,
    receiver: WebhookReceiver,
) -> None:
    job_id = await submit(running, job(target_server, receiver))
    assert (await job_ends(running, job_id))["status"] == "succeeded"

    delivery = await delivered(running, job_id)

    assert delivery["status"] == "delivered"
    assert [(t["attempt"], t["status_code"]) for t in delivery["attempts"]] == [(1, 500), (2, 200)]
    assert delivery["attempts"][0]["error"]["type"] == "http_status"
    assert delivery["attempts"][0]["next_attempt_at"] is not None
    assert delivery["next_attempt_at"] is None
    first, second = receiver.received
    for sent in (first, second):
        assert sent["headers"]["x-jobqueue-event"] == "job.finished"
        assert sent["headers"]["x-jobqueue-delivery"] == delivery["delivery_id"]
        assert sent["headers"]["x-team"] == "a"
    verify = documented_verify()
    event = verify(SECRET.encode(), second["headers"], second["body"])
    assert event["job_id"] == job_id and event["status"] == "succeeded"
    assert event["name"] == "hooked" and event["event"] == "job.finished"
    assert event["delivery_id"] == delivery["delivery_id"]
    assert str(event["timestamp"]) == second["headers"]["x-jobqueue-timestamp"]
    assert event["result"] == (await client.get(f"/api/v1/jobs/{job_id}/result")).json()
    with pytest.raises(ValueError, match="signature"):
        verify(b"another secret", second["headers"], second["body"])
    with pytest.raises(ValueError, match="signature"):
        verify(SECRET.encode(), second["headers"], second["body"].replace(b"succeeded", b"failed"))
    listed = await client.get(f"/api/v1/jobs/{job_id}/webhooks")
    assert listed.status_code == 200
    assert listed.json()["deliveries"][0]["attempts"] == delivery["attempts"]
    WebhookDeliveries.model_validate(listed.json())  # as /openapi.json documents it
    assert (await running.get_job(job_id))["status"] == "succeeded"


async def test_only_the_events_asked_for_are_delivered(
    running: Engine, target_server: TargetServer, receiver: WebhookReceiver
) -> None:
    job_id = await submit(running, job(target_server, receiver, events=["failed"]))
    assert (await job_ends(running, job_id))["status"] == "succeeded"
    assert await running.deliver_webhooks() == 0
    assert await deliveries(running, job_id) == []


async def test_cancel_enqueues_a_canceled_event(
    engine: Engine, target_server: TargetServer, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 0
    job_id = await submit(engine, job(target_server, receiver))
    await engine.cancel(job_id)

    assert await engine.deliver_webhooks() == 1

    (delivery,) = await deliveries(engine, job_id)
    assert (delivery["job_status"], delivery["status"]) == ("canceled", "delivered")
    assert b'"status":"canceled"' in receiver.received[0]["body"]


async def test_a_dead_receiver_fails_the_delivery_after_max_attempts_and_the_job_stays(
    config: EngineConfig, target_server: TargetServer, receiver: WebhookReceiver
) -> None:
    engine = await Engine.open(replace(config, webhook_max_attempts=3))
    engine.start_worker()
    try:
        doc = job(target_server, receiver)
        doc["on_complete"]["url"] = "http://127.0.0.1:9/closed"  # nothing listens there
        job_id = await submit(engine, doc)
        assert (await job_ends(engine, job_id))["status"] == "succeeded"
        delivery = await delivered(engine, job_id)
    finally:
        await engine.close()
    assert delivery["status"] == "failed"
    assert [t["error"]["type"] for t in delivery["attempts"]] == ["network"] * 3
    assert delivery["attempts"][-1]["next_attempt_at"] is None


async def test_blocked_target_is_not_retried(
    config: EngineConfig, receiver: WebhookReceiver
) -> None:
    engine = await Engine.open(replace(config, allow_private_networks=False))
    try:
        doc = {
            "on_complete": {"url": receiver.url("/hook")},
            "tasks": [{"name": "t", "url": "http://127.0.0.1:9/"}],
        }
        job_id = await submit(engine, doc)
        await engine.run_worker(burst=True)
        assert (await engine.get_job(job_id))["status"] == "failed"

        assert await engine.deliver_webhooks() == 1

        (delivery,) = await deliveries(engine, job_id)
        assert delivery["status"] == "failed"
        assert [t["error"]["type"] for t in delivery["attempts"]] == ["blocked_target"]
        assert receiver.count() == 0
        assert (await engine.get_job(job_id))["status"] == "failed"
    finally:
        await engine.close()


async def test_two_workers_send_a_delivery_once(
    engine: Engine, config: EngineConfig, target_server: TargetServer, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 0
    job_id = await submit(engine, job(target_server, receiver))
    await engine.run_worker(burst=True)
    other = await Engine.open(config)
    try:
        sent = await asyncio.gather(engine.deliver_webhooks(), other.deliver_webhooks())
    finally:
        await other.close()
    assert sorted(sent) == [0, 1]
    assert receiver.count() == 1
    (delivery,) = await deliveries(engine, job_id)
    assert delivery["status"] == "delivered"


async def test_webhooks_of_an_unknown_job_answer_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/jobs/j_nope/webhooks")
    assert answer.status_code == 404


def test_with_api_keys_deliveries_are_the_owners_and_callbacks_need_no_key(
    tmp_path: Path,
) -> None:
    alice, bob = "alice:alice-key-0123456789abcdef", "bob:bob-key-0123456789abcdefgh"

    def as_key(entry: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {entry.partition(':')[2]}"}

    with ApiServer(tmp_path / "api.db", api_keys=(alice, bob)) as server:
        job = {"url": "http://127.0.0.1:9/", "on_complete": {"url": "http://127.0.0.1:9/hook"}}
        created = httpx.post(server.url("/api/v1/jobs"), json=job, headers=as_key(alice))
        job_id = created.json()["job_id"]
        path = server.url(f"/api/v1/jobs/{job_id}/webhooks")

        async def listed() -> bool:
            answer = httpx.get(path, headers=as_key(alice))
            return answer.status_code == 200 and bool(answer.json()["deliveries"])

        asyncio.run(until(listed, timeout=15))
        assert httpx.get(path, headers=as_key(bob)).status_code == 404
        assert httpx.get(path).status_code == 401
        callback = httpx.post(server.url("/api/v1/callbacks/unknown"), json={"status": "failed"})
        assert callback.status_code == 404, callback.text
