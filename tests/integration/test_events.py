"""Job events through the engine: a snapshot, then every change in order, stored in the
transaction that made it, resumable by event id, gone with the job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine import Engine
from engine.jobs import feed
from engine.store.tables import job_events
from tests.integration.target_server import TargetServer
from tests.support.gated_target import GatedTarget
from tests.support.store import store_of, submit
from tests.support.waiting import job_ends, until


@pytest.fixture
def gated() -> Iterator[GatedTarget]:
    with GatedTarget() as target:
        yield target


class Reader:
    """Reads a job's events in the background, as a stream's client would."""

    def __init__(self, stream: AsyncIterator[dict[str, Any]]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.ended = asyncio.Event()
        self._task = asyncio.create_task(self._read(stream))

    async def _read(self, stream: AsyncIterator[dict[str, Any]]) -> None:
        async for message in stream:
            self.messages.append(message)
        self.ended.set()

    async def seen(self, task: str, status: str) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next(
                (m for m in self.messages if m.get("task") == task and m["status"] == status),
                None,
            )

        async def check() -> dict[str, Any] | None:
            if self._task.done():
                self._task.result()
            return find()

        found: dict[str, Any] = await until(check, timeout=15)
        return found

    async def end(self) -> list[dict[str, Any]]:
        await asyncio.wait_for(self.ended.wait(), 15)
        await self._task
        return self.messages

    def changes(self) -> list[tuple[str, str]]:
        """(task or "job", status) of every message after the snapshot."""
        return [
            (m.get("task", "job"), m["status"]) for m in self.messages if m["type"] != "snapshot"
        ]


def _dag(gated: GatedTarget) -> dict[str, Any]:
    return {
        "name": "two-steps",
        "tasks": [
            {"name": "a", "url": gated.url("/gate/a")},
            {"name": "b", "url": gated.url("/gate/b"), "depends_on": ["a"]},
        ],
    }


async def test_a_snapshot_then_every_change_in_order_until_the_job_ends(
    running: Engine, gated: GatedTarget
) -> None:
    job_id = await submit(running, _dag(gated))
    await asyncio.to_thread(gated.wait_arrived, "a")
    reader = Reader(running.job_events(job_id))
    await until(lambda: _has(reader, "snapshot"))
    snapshot = reader.messages[0]
    assert snapshot["type"] == "snapshot"
    assert snapshot["job"]["job_id"] == job_id
    assert {t["name"]: t["status"] for t in snapshot["job"]["tasks"]} == {
        "a": "running",
        "b": "pending",
    }
    gated.release("a")
    await reader.seen("b", "running")
    gated.release("b")
    messages = await reader.end()
    assert reader.changes() == [
        ("a", "succeeded"),
        ("b", "queued"),
        ("b", "running"),
        ("b", "succeeded"),
        ("job", "succeeded"),
    ]
    ids = [m["id"] for m in messages]
    assert ids == sorted(ids) and len(set(ids[1:])) == len(ids) - 1
    b_running = next(m for m in messages if m.get("task") == "b" and m["status"] == "running")
    assert b_running == {
        "id": b_running["id"],
        "type": "task",
        "job_id": job_id,
        "task": "b",
        "status": "running",
        "attempt": 1,
        "at": b_running["at"],
        "error": None,
    }
    assert b_running["at"].endswith("Z")
    assert messages[-1] | {"id": 0, "at": ""} == {
        "id": 0,
        "type": "job",
        "job_id": job_id,
        "status": "succeeded",
        "at": "",
    }


async def _has(reader: Reader, kind: str) -> bool:
    return any(m["type"] == kind for m in reader.messages)


async def test_a_failed_attempt_carries_its_error_and_when_the_retry_is_due(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(
        running,
        {
            "url": target_server.url("/flaky/events?fail=1"),
            "max_attempts": 2,
            "backoff_strategy": "fixed",
            "backoff_seconds": 0.2,
        },
    )
    reader = Reader(running.job_events(job_id))
    await reader.end()
    retry = await reader.seen("main", "queued")
    assert retry["attempt"] == 1
    assert retry["error"]["type"] == "http_status"
    assert retry["next_attempt_at"] >= retry["at"]
    changes = reader.changes()
    assert changes[changes.index(("main", "queued")) :] == [
        ("main", "queued"),
        ("main", "running"),
        ("main", "succeeded"),
        ("job", "succeeded"),
    ]


async def test_a_reader_that_resumes_after_an_event_gets_exactly_the_events_after_it(
    running: Engine, gated: GatedTarget
) -> None:
    job_id = await submit(running, _dag(gated))
    first = Reader(running.job_events(job_id))
    gated.release("a")
    gated.release("b")
    everything = await first.end()
    middle = everything[2]
    resumed = Reader(running.job_events(job_id, after=middle["id"]))
    assert await resumed.end() == everything[3:]
    final = Reader(running.job_events(job_id, after=everything[-1]["id"]))
    assert await final.end() == []


async def test_cancel_is_streamed_and_ends_the_stream(running: Engine, gated: GatedTarget) -> None:
    job_id = await submit(running, _dag(gated))
    await asyncio.to_thread(gated.wait_arrived, "a")
    reader = Reader(running.job_events(job_id))
    await until(lambda: _has(reader, "snapshot"))
    await running.cancel(job_id)
    await reader.end()
    assert reader.changes() == [("a", "canceled"), ("b", "canceled"), ("job", "canceled")]
    assert reader.messages[1]["error"]["type"] == "canceled"


async def test_a_reader_far_behind_gets_a_fresh_snapshot(
    running: Engine, target_server: TargetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "PAGE", 4)
    monkeypatch.setattr(feed, "MAX_BEHIND", 6)
    tasks = [{"name": f"t{i}", "url": target_server.url("/json")} for i in range(5)]
    job_id = await submit(running, {"name": "wide", "tasks": tasks})
    await job_ends(running, job_id)
    # Resumed from before the first event: 5 x (running, succeeded) + the job's end = 11.
    messages = await Reader(running.job_events(job_id, after=0)).end()
    assert [m["type"] for m in messages] == ["snapshot"]
    assert messages[0]["job"]["status"] == "succeeded"


async def test_events_are_deleted_with_their_job(running: Engine, gated: GatedTarget) -> None:
    job_id = await submit(running, _dag(gated))
    gated.release("a")
    gated.release("b")
    await job_ends(running, job_id)
    assert await _event_count(running, job_id) > 0
    await running.delete(job_id)
    assert await _event_count(running, job_id) == 0


async def test_a_retried_job_streams_its_tasks_back_to_work(
    running: Engine, target_server: TargetServer
) -> None:
    job_id = await submit(
        running,
        {
            "name": "fails-once",
            "tasks": [
                {"name": "call", "url": target_server.url("/flaky/retry-events?fail=1")},
                {"name": "after", "url": target_server.url("/json"), "depends_on": ["call"]},
            ],
        },
    )
    assert (await job_ends(running, job_id))["status"] == "failed"
    _, cursor = await running.snapshot(job_id)
    await running.retry(job_id)
    reader = Reader(running.job_events(job_id, after=cursor))
    await reader.end()
    changes = reader.changes()
    assert changes[:4] == [
        ("job", "running"),
        ("call", "pending"),
        ("after", "pending"),
        ("call", "queued"),
    ]
    assert changes[-1] == ("job", "succeeded")


async def _event_count(engine: Engine, job_id: str) -> int:
    async with store_of(engine).read() as conn:
        query = select(func.count()).select_from(job_events).where(job_events.c.job_id == job_id)
        return int((await conn.execute(query)).scalar_one())
