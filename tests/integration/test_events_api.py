"""The live event streams over a real server: Server-Sent Events (``GET /events``) and the
WebSocket (``/jobs/{id}/events``), resumed by event id, closed after the job's final event, and
fed by a worker in another process."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.api_server import ApiServer
from tests.support.gated_target import GatedTarget
from tests.support.processes import Proc, Server, env_for, poll, script
from tests.support.streams import changes, read_until, sse_messages


@pytest.fixture
def gated() -> Iterator[GatedTarget]:
    with GatedTarget() as target:
        yield target


@pytest.fixture
def server(tmp_path: Path, gated: GatedTarget) -> Iterator[ApiServer]:
    with ApiServer(tmp_path / "api.db") as api:
        yield api
        # A call still held by the target would keep the server's shutdown waiting.
        gated.release_all()


def dag(gated: GatedTarget, prefix: str = "") -> dict[str, Any]:
    return {
        "name": "two-steps",
        "tasks": [
            {"name": "a", "url": gated.url(f"/gate/{prefix}a")},
            {"name": "b", "url": gated.url(f"/gate/{prefix}b"), "depends_on": ["a"]},
        ],
    }


def submit(base: str, document: dict[str, Any]) -> str:
    response = httpx.post(f"{base}/api/v1/jobs", json=document)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def watch_two_steps(base: str, gated: GatedTarget, job_id: str, prefix: str = "") -> None:
    """Follow a running ``dag()`` job over SSE while the test releases its calls."""
    url = f"{base}/api/v1/events"
    with httpx.stream("GET", url, params={"job_id": job_id}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(response)
        snapshot = next(messages)
        assert snapshot["type"] == "snapshot" and snapshot["job"]["job_id"] == job_id
        gated.wait_arrived(f"{prefix}a")
        gated.release(f"{prefix}a")
        seen = read_until(messages, "b", "running")
        gated.release(f"{prefix}b")
        seen += list(messages)  # the server ends the stream after the job's final event
    assert changes(seen)[-5:] == [
        ("a", "succeeded"),
        ("b", "queued"),
        ("b", "running"),
        ("b", "succeeded"),
        ("job", "succeeded"),
    ]
    assert all(m["sse_id"] == str(m["id"]) for m in seen)


def test_sse_sends_a_snapshot_then_each_change_and_ends_with_the_job(
    server: ApiServer, gated: GatedTarget
) -> None:
    job_id = submit(server.base_url, dag(gated))
    watch_two_steps(server.base_url, gated, job_id)


def test_sse_resumes_after_last_event_id_and_stops_a_finished_job_with_204(
    server: ApiServer, gated: GatedTarget
) -> None:
    job_id = submit(server.base_url, dag(gated))
    url = server.url("/api/v1/events")
    with httpx.stream("GET", url, params={"job_id": job_id}, timeout=30) as response:
        messages = sse_messages(response)
        next(messages)
        gated.release("a")
        before = read_until(messages, "a", "succeeded")
    gated.release("b")  # changes while no client is connected
    last = before[-1]["sse_id"]
    headers = {"Last-Event-ID": last}
    with httpx.stream("GET", url, params={"job_id": job_id}, headers=headers, timeout=30) as again:
        rest = list(sse_messages(again))
    assert rest[0]["type"] != "snapshot"
    assert rest[0]["id"] > int(last)
    assert changes(rest) == [
        ("b", "queued"),
        ("b", "running"),
        ("b", "succeeded"),
        ("job", "succeeded"),
    ]
    ended = httpx.get(url, params={"job_id": job_id}, headers={"Last-Event-ID": rest[-1]["sse_id"]})
    assert ended.status_code == 204
    unprefixed = httpx.get(server.url("/events"), params={"job_id": job_id}, timeout=30)
    assert [m["type"] for m in sse_messages(unprefixed)] == ["snapshot"]


def test_sse_answers_404_for_an_unknown_job_and_422_for_a_bad_event_id(server: ApiServer) -> None:
    url = server.url("/api/v1/events")
    missing = httpx.get(url, params={"job_id": "j_nope"})
    assert missing.status_code == 404
    assert missing.json()["detail"]["code"] == "not_found"
    bad = httpx.get(url, params={"job_id": "j_nope"}, headers={"Last-Event-ID": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["detail"]["code"] == "invalid_request"
    assert bad.json()["detail"]["location"] == "/headers/Last-Event-ID"
    bad_query = httpx.get(url, params={"job_id": "j_nope", "last_event_id": "-1"})
    assert bad_query.json()["detail"]["location"] == "/last_event_id"
    no_job = httpx.get(url)
    assert no_job.status_code == 422


def _ws_url(server: ApiServer, path: str) -> str:
    return "ws" + server.url(path).removeprefix("http")


def test_websocket_streams_the_same_messages_and_closes_after_the_final_event(
    server: ApiServer, gated: GatedTarget
) -> None:
    job_id = submit(server.base_url, dag(gated))
    with connect(_ws_url(server, f"/api/v1/jobs/{job_id}/events"), open_timeout=10) as ws:
        snapshot = orjson.loads(ws.recv(timeout=10))
        assert snapshot["type"] == "snapshot"
        gated.release("a")
        gated.release("b")
        received = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                received.append(orjson.loads(ws.recv(timeout=10)))
        assert ws.close_code == 1000
    assert changes(received)[-1] == ("job", "succeeded")
    assert ("b", "running") in changes(received)
    middle = received[0]["id"]
    resume = _ws_url(server, f"/api/v1/jobs/{job_id}/events?last_event_id={middle}")
    with connect(resume, open_timeout=10) as ws:
        again = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                again.append(orjson.loads(ws.recv(timeout=10)))
    assert again == received[1:]


def test_websocket_closes_with_4404_for_an_unknown_job(server: ApiServer) -> None:
    with connect(_ws_url(server, "/api/v1/jobs/j_nope/events"), open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4404


def run_events_across_processes(tmp_path: Path, gated: GatedTarget, db_url: str) -> None:
    """The API process streams what a worker in another process does."""
    settings = {
        "JOBQUEUE_DB_URL": db_url,
        "JOBQUEUE_ALLOW_PRIVATE_NETWORKS": "true",
        "JOBQUEUE_POLL_INTERVAL": "0.05",
    }
    with (
        ApiServer(tmp_path / "unused.db", db_url=db_url, embedded_worker=False) as api,
        Proc([script("jobqueue"), "worker"], env=env_for(None, **settings), log=tmp_path / "w.log"),
    ):
        # The API process runs no worker: every change streamed was made by the other process.
        job_id = submit(api.base_url, dag(gated, prefix="x"))
        watch_two_steps(api.base_url, gated, job_id, prefix="x")


@pytest.mark.slow
def test_a_worker_in_another_process_is_streamed_by_the_api_process(
    tmp_path: Path, gated: GatedTarget
) -> None:
    db = tmp_path / "shared.db"
    run_events_across_processes(tmp_path, gated, f"sqlite+aiosqlite:///{db}")


def test_websocket_closes_with_1008_for_a_malformed_event_id(server: ApiServer) -> None:
    with connect(_ws_url(server, "/api/v1/jobs/j_x/events?last_event_id=x"), open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1008


def test_a_client_that_goes_away_leaves_no_reader_behind(
    server: ApiServer, gated: GatedTarget
) -> None:
    job_id = submit(server.base_url, dag(gated))
    signals = server.app.state.engine._store.job_signals
    url = server.url("/api/v1/events")
    # the module's server may still be closing the readers of earlier tests' streams
    poll(lambda: signals.watched == 0, timeout=10, what="earlier tests' readers are gone")
    with httpx.stream("GET", url, params={"job_id": job_id}, timeout=30) as response:
        messages = sse_messages(response)
        assert next(messages)["type"] == "snapshot"
        gated.release("a")  # the stream's reader is live: it delivers the change, then we leave
        assert any(m.get("task") == "a" and m["status"] == "succeeded" for m in messages)
    with connect(_ws_url(server, f"/api/v1/jobs/{job_id}/events"), open_timeout=10) as ws:
        assert orjson.loads(ws.recv(timeout=10))["type"] == "snapshot"
    poll(lambda: signals.watched == 0, timeout=10, what="the streams' readers are gone")


@pytest.mark.slow
def test_a_stopping_server_ends_its_streams_before_waiting_for_running_calls(
    tmp_path: Path, gated: GatedTarget
) -> None:
    """SIGTERM ends the open streams at once; the server still gives the held call its grace."""
    with Server(tmp_path, tmp_path / "stop.db", JOBQUEUE_SHUTDOWN_GRACE="30") as server:
        job_id = submit(server.url, {"url": gated.url("/gate/held")})
        gated.wait_arrived("held")
        params = {"job_id": job_id}
        with httpx.stream("GET", f"{server.url}/api/v1/events", params=params, timeout=30) as r:
            messages = sse_messages(r)
            assert next(messages)["type"] == "snapshot"
            server.popen.terminate()
            assert list(messages) == []  # the server ended the stream
        assert server.popen.poll() is None, "the stream ended only because the process exited"
        gated.release("held")
        server.popen.wait(timeout=30)
