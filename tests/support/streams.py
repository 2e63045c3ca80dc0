"""Clients of the live event streams for tests: Server-Sent Events over httpx, WebSockets over
``websockets``' synchronous client. Both read until the server ends the stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson


def sse_messages(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The messages of an event stream, each with its ``id:`` field as ``sse_id``."""
    event_id: str | None = None
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            message: dict[str, Any] = orjson.loads("\n".join(data))
            message["sse_id"] = event_id
            yield message
            event_id, data = None, []


def read_until(messages: Iterator[dict[str, Any]], task: str, status: str) -> list[dict[str, Any]]:
    """Messages up to and including the first of ``task`` (or "job") reaching ``status``."""
    seen = []
    for message in messages:
        seen.append(message)
        name = message.get("task", "job") if message["type"] != "snapshot" else None
        if name == task and message["status"] == status:
            return seen
    raise AssertionError(f"the stream ended before {task} was {status}: {seen}")


def changes(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(task or "job", status) of every message that is not a snapshot."""
    return [(m.get("task", "job"), m["status"]) for m in messages if m["type"] != "snapshot"]
