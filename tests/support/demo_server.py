"""The demo API of ``examples/demo_api`` served for tests: uvicorn in a background thread.

The socket is bound here (127.0.0.1, ephemeral port) before the thread starts, so the address is
known at once and no other process can take the port in between::

    with DemoServer() as demo:
        httpx.get(demo.url("/search"), params={"q": "cats"})

or, in a test module (a fixture defined there, so the name is not an unused import)::

    @pytest.fixture
    def demo() -> Iterator[DemoServer]:
        with DemoServer() as server:
            yield server

Each server gets a fresh ``create_app()``, so its flaky counters and notifications start empty;
``.app`` is that app, ``.notifications`` what ``POST /notify`` has recorded so far.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from examples.demo_api import create_app
from tests.support.threaded_server import ThreadedServer

__all__ = ["DemoServer", "demo_server"]


class DemoServer(ThreadedServer):
    """``examples.demo_api.create_app()`` under uvicorn on 127.0.0.1, in a daemon thread."""

    app: FastAPI

    def __init__(self, *, startup_timeout: float = 10.0) -> None:
        super().__init__(
            create_app(), name="demo-api", startup_timeout=startup_timeout, lifespan="off"
        )

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """Every ``POST /notify`` so far (a copy), oldest first."""
        return list(self.app.state.demo.notifications)

    def flaky_calls(self, key: str) -> int:
        """How many ``POST /flaky/{key}`` calls arrived."""
        calls: int = self.app.state.demo.flaky.get(key, 0)
        return calls


@pytest.fixture
def demo_server() -> Iterator[DemoServer]:
    """A fresh demo API for one test (import it into a conftest to share it)."""
    with DemoServer() as server:
        yield server
