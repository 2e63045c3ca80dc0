"""``jobqueue run`` of a workflow with callback tasks: serve the callback endpoint meanwhile.

A local run has no server that the remote system could call back, so the run serves the REST
app (on its own engine) on 127.0.0.1, on a free port, for as long as the job runs, and hands
that address to its tasks as ``callback.url``. ``JOBQUEUE_PUBLIC_URL`` set: that address is
used instead and nothing is served (a proxy or tunnel forwards to a server of your own).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from api.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from engine import Engine


def _quiet_server(app: Any) -> uvicorn.Server:
    """uvicorn inside a running command, which keeps its own signal handlers (imported here:
    the CLI imports uvicorn only in the commands that serve)."""
    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    return QuietServer(config)


class CallbackListener:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[Any] | None = None
        self.public_url = settings.public_url

    def bind(self) -> str:
        """Take a free port of 127.0.0.1 now (before the engine is configured); its URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.public_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.public_url

    @contextlib.asynccontextmanager
    async def serving(self, engine: Engine) -> AsyncIterator[None]:
        if self._socket is None:
            yield
            return
        from api.main import create_app

        self._server = _quiet_server(create_app(self._settings, engine=engine))
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        try:
            yield
        finally:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task
            self._socket.close()


def needs_listener(spec: Any, settings: Settings) -> bool:
    return settings.public_url is None and any(t.callback is not None for t in spec.tasks)
