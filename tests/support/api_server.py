"""The real REST app (``api.main.create_app``) under uvicorn on 127.0.0.1, in a daemon thread.

It opens its own engine on the given SQLite file, with the embedded worker, private targets
allowed and short polls, exactly as ``jobqueue serve`` would::

    with ApiServer(tmp_path / "api.db") as server:
        httpx.get(f"{server.base_url}/healthz")
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

from api.main import create_app
from api.settings import Settings


class ApiServer:
    """``create_app(Settings(...))`` served on an ephemeral port bound before the thread starts."""

    def __init__(self, db: Path, *, startup_timeout: float = 20.0, **settings: Any) -> None:
        values: dict[str, Any] = {
            "db_url": f"sqlite+aiosqlite:///{db}",
            "allow_private_networks": True,
            "poll_interval": 0.05,
            "shutdown_grace": 2.0,
            "default_timeout": 10.0,
            "sqlite_synchronous": "NORMAL",
            "log_level": "warning",
        }
        values.update(settings)
        self.app = create_app(Settings(**values))
        self.startup_timeout = startup_timeout
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="on", loop="asyncio"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="jobqueue-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API did not start: {self._error!r}")
            self._thread.join(0.01)
        return self

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start()
            self._error = exc

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._socket = self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
