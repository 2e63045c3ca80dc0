"""Secret header values are sent to the target as they are, and shown nowhere: not in any
document the API returns for the job, not in the log lines of the run (DEBUG included)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from api.logs import configure_logging
from engine import Engine, EngineConfig
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.waiting import api_job_ends

REQUEST_SECRETS = {
    "Authorization": "Bearer auth-secret-1",
    "Proxy-Authorization": "Basic proxy-secret-2",
    "Cookie": "session=cookie-secret-3",
    "X-Api-Key": "apikey-secret-4",
    "X-Configured-Token": "configured-secret-5",  # JOBQUEUE_SECRET_HEADERS
    "X-Signature": "marked-secret-6",  # the task's secret_headers
}
RESPONSE_SECRETS = {
    "Set-Cookie": "sid=response-cookie-secret-7",
    "X-Api-Key": "response-apikey-secret-8",
    "X-Configured-Token": "response-configured-secret-9",
    "X-Signature": "response-marked-secret-10",
}
URL_SECRET = "url-password-secret-11"
ALL_SECRETS = [*REQUEST_SECRETS.values(), *RESPONSE_SECRETS.values(), URL_SECRET]
SECRET_NAMES = frozenset({"x-configured-token"})


@pytest.fixture
def config(db_url: str) -> EngineConfig:
    return make_config(db_url, secret_header_names=SECRET_NAMES)


@pytest.fixture
def debug_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    configure_logging("debug", "text", SECRET_NAMES)
    yield capsys
    logging.getLogger("jobqueue").handlers.clear()


def job_document(server: TargetServer) -> dict[str, object]:
    query = urlencode({**RESPONSE_SECRETS, "X-Plain": "visible-value"})
    url = server.url(f"/headers?{query}").replace("://", f"://robot:{URL_SECRET}@", 1)
    return {
        "name": "secrets",
        "tasks": [
            {
                "name": "call",
                "method": "POST",
                "url": url,
                "headers": REQUEST_SECRETS,
                "secret_headers": ["X-Signature"],
                "body": {"n": 1},
            },
            {
                "name": "refused",
                "url": f"http://robot:{URL_SECRET}@127.0.0.1:9/x",
                "headers": {"Authorization": "Bearer auth-secret-1"},
                "depends_on": ["call"],
            },
        ],
    }


async def read_everything(client: httpx.AsyncClient, job_id: str) -> str:
    paths = [
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/jobs/{job_id}/result",
        f"/api/v1/jobs/{job_id}/tasks/call/attempts",
        f"/api/v1/jobs/{job_id}/tasks/refused/attempts",
        f"/api/v1/jobs/{job_id}/graph",
        f"/api/v1/jobs/{job_id}/graph?format=mermaid",
        f"/jobs/{job_id}",
        f"/jobs/{job_id}/result",
        "/api/v1/jobs",
    ]
    texts = []
    for path in paths:
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        texts.append(answer.text)
    return "\n".join(texts)


async def test_secrets_are_sent_but_never_shown(
    debug_logs: pytest.CaptureFixture[str],
    client: httpx.AsyncClient,
    running: Engine,
    target_server: TargetServer,
) -> None:
    created = await client.post("/api/v1/jobs", json=job_document(target_server))
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    assert (await api_job_ends(client, job_id))["status"] == "failed"

    # the real values went out
    sent = target_server.requests[0]
    assert all(sent.header(name) == value for name, value in REQUEST_SECRETS.items())

    shown = await read_everything(client, job_id)
    leaked = [secret for secret in ALL_SECRETS if secret in shown]
    assert leaked == []
    result = (await client.get(f"/api/v1/jobs/{job_id}/result")).json()
    headers = result["tasks"]["call"]["response_headers"]
    assert headers["x-plain"] == "visible-value"
    assert headers["x-api-key"] == headers["x-signature"] == headers["x-configured-token"] == "***"
    assert "set-cookie" not in headers or headers["set-cookie"] == "***"
    detail = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    assert detail["tasks"][1]["url"] == "http://***@127.0.0.1:9/x"

    # the engine's own log lines, and any line that echoes a URL or a header
    logging.getLogger("jobqueue.test").error(
        "calling %s with Authorization: %s; X-Configured-Token=%s",
        f"http://robot:{URL_SECRET}@example.org/",
        "Bearer auth-secret-1",
        "configured-secret-5",
    )
    logged = debug_logs.readouterr().err
    assert job_id in logged and "calling http://***@example.org/" in logged
    assert [secret for secret in ALL_SECRETS if secret in logged] == []


async def test_stored_documents_of_schedules_and_definitions_show_no_secret(
    client: httpx.AsyncClient, target_server: TargetServer
) -> None:
    """A schedule's job document and a workflow definition carry request headers too: every
    read of them masks the secret values, as the job routes do."""
    task = {"name": "call", "url": target_server.url("/echo"), "headers": REQUEST_SECRETS}
    schedule = {"name": "nightly", "cron": "0 3 * * *", "job": {"tasks": [task]}}
    created = await client.post("/api/v1/schedules", json=schedule)
    assert created.status_code == 201, created.text
    put = await client.put("/api/v1/workflows/calls", json={"tasks": [task]})
    assert put.status_code == 201, put.text
    texts = [created.text, put.text]
    for path in (
        "/api/v1/schedules",
        "/api/v1/schedules/nightly",
        "/api/v1/workflows/calls",
        "/api/v1/workflows/calls/versions/1",
    ):
        answer = await client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        texts.append(answer.text)
    updated = await client.patch("/api/v1/schedules/nightly", json={"enabled": False})
    texts.append(updated.text)
    shown = "\n".join(texts)
    known = ["auth-secret-1", "proxy-secret-2", "cookie-secret-3", "apikey-secret-4"]
    assert [secret for secret in known if secret in shown] == []
    detail = (await client.get("/api/v1/schedules/nightly")).json()
    assert detail["job"]["tasks"][0]["headers"]["Authorization"] == "***"


async def test_webhook_deliveries_show_no_secret(
    client: httpx.AsyncClient, running: Engine, target_server: TargetServer
) -> None:
    """The headers of a completion webhook, the configured secret names included, and the
    userinfo of its URL are masked when the deliveries are read."""
    hook = {
        "url": f"http://robot:{URL_SECRET}@127.0.0.1:9/hook",
        "headers": {"X-Configured-Token": "configured-secret-5", "X-Plain": "visible-value"},
    }
    job = {"url": target_server.url("/echo"), "on_complete": hook}
    created = await client.post("/api/v1/jobs", json=job)
    assert created.status_code == 201, created.text
    job_id = created.json()["job_id"]
    await api_job_ends(client, job_id)
    answer = await client.get(f"/api/v1/jobs/{job_id}/webhooks")
    assert answer.status_code == 200, answer.text
    assert "configured-secret-5" not in answer.text and URL_SECRET not in answer.text
    assert "visible-value" in answer.text
