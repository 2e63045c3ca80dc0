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

import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import pytest
import uvicorn
from fastapi import FastAPI

from examples.demo_api import create_app

__all__ = ["DemoServer", "demo_server"]


class DemoServer:
    """``examples.demo_api.create_app()`` under uvicorn on 127.0.0.1, in a daemon thread."""

    def __init__(self, *, startup_timeout: float = 10.0) -> None:
        self.app: FastAPI = create_app()
        self.startup_timeout = startup_timeout
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("the demo server is not started")
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def notifications(self) -> list[dict[str, Any]]:
        """Every ``POST /notify`` so far (a copy), oldest first."""
        return list(self.app.state.demo.notifications)

    def flaky_calls(self, key: str) -> int:
        """How many ``POST /flaky/{key}`` calls arrived."""
        calls: int = self.app.state.demo.flaky.get(key, 0)
        return calls

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", loop="asyncio"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="demo-api", daemon=True)
        self._thread.start()
        self._wait_started()
        return self

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by _wait_started / stop
            self._error = exc

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._close_socket()
                raise RuntimeError(f"the demo API did not start: {self._error!r}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the demo API did not start within {self.startup_timeout} s")
            self._thread.join(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                self._server.force_exit = True  # type: ignore[union-attr]
                self._thread.join(timeout=5)
        self._close_socket()
        self._thread = None
        self._server = None

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture
def demo_server() -> Iterator[DemoServer]:
    """A fresh demo API for one test (import it into a conftest to share it)."""
    with DemoServer() as server:
        yield server
