"""The REST app behind a real uvicorn server in a thread of the test process, on a free port of
127.0.0.1: for tests that need real sockets (stalled or aborted uploads) and the server's log
records (``log_config=None`` leaves uvicorn's loggers to propagate, so ``caplog`` sees them)."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self

import uvicorn

from api.main import create_app
from api.settings import Settings
from tests.support.processes import free_port, poll


class LiveApp:
    """``create_app(settings)`` served by uvicorn in a thread; stopped on exit."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-app", daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        poll(
            lambda: self.server.started or not self.thread.is_alive(),
            timeout=30.0,
            what="uvicorn started",
        )
        assert self.server.started, "uvicorn stopped during startup"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30.0)
        assert not self.thread.is_alive(), "uvicorn did not stop within 30 s"
