"""``jobqueue serve`` stopped and started again on the same SQLite file while a task waits for
its callback, and again while its job's completion webhook waits for a retry: both finish."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_webhooks import SECRET, documented_verify
from tests.support.callback_target import CallbackTarget, WebhookReceiver
from tests.support.processes import Server, free_port, poll

pytestmark = pytest.mark.slow


@pytest.fixture
def remote() -> Iterator[CallbackTarget]:
    with CallbackTarget() as server:
        yield server


def _job(remote: CallbackTarget, receiver: WebhookReceiver) -> dict[str, Any]:
    return {
        "name": "restarted",
        "on_complete": {"url": receiver.url("/hook")},
        "tasks": [
            {
                "name": "work",
                "method": "POST",
                "url": remote.url("/work"),
                "body": {"url": "{{ callback.url }}", "token": "{{ callback.token }}"},
                "callback": {"timeout_sec": 600},
            }
        ],
    }


def _get(server: Server, path: str) -> Any:
    return httpx.get(f"{server.url}/api/v1{path}", timeout=5).json()


def test_waiting_task_and_pending_webhook_survive_server_restarts(
    tmp_path: Path, remote: CallbackTarget
) -> None:
    db = tmp_path / "jobqueue.db"
    port = free_port()  # the callback URL names it: the restarted server listens there again
    settings = {"JOBQUEUE_WEBHOOK_SECRET": SECRET, "JOBQUEUE_WEBHOOK_BACKOFF": "0.2"}
    with WebhookReceiver(fail_first=10**6) as receiver:
        with Server(tmp_path, db, port=port, log_name="first.log", **settings) as first:
            answer = httpx.post(f"{first.url}/api/v1/jobs", json=_job(remote, receiver))
            job_id = answer.json()["job_id"]
            poll(
                lambda: _get(first, f"/jobs/{job_id}")["tasks"][0]["status"] == "waiting",
                timeout=30,
                what="the task waiting",
            )

        with Server(tmp_path, db, port=port, log_name="second.log", **settings) as second:
            report = {"status": "succeeded", "output": {"done": True}}
            assert remote.call_back(0, report).status_code == 200
            poll(
                lambda: _get(second, f"/jobs/{job_id}")["status"] == "succeeded",
                timeout=30,
                what="the job succeeded",
            )
            poll(
                lambda: _get(second, f"/jobs/{job_id}/webhooks")["deliveries"][0]["attempts"],
                timeout=30,
                what="a failed webhook try",
            )
        receiver.fail_first = 0

        with Server(tmp_path, db, port=port, log_name="third.log", **settings) as third:
            delivery = poll(
                lambda: next(
                    (
                        d
                        for d in _get(third, f"/jobs/{job_id}/webhooks")["deliveries"]
                        if d["status"] == "delivered"
                    ),
                    None,
                ),
                timeout=30,
                what="the webhook delivered",
            )
    assert delivery["attempts"][-1]["status_code"] == 200
    last = receiver.received[-1]
    event = documented_verify()(SECRET.encode(), last["headers"], last["body"])
    assert event["result"]["tasks"]["work"]["response_body"] == {"done": True}
    assert json.loads(last["body"])["delivery_id"] == delivery["delivery_id"]
