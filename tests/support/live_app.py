"""The REST app behind a real uvicorn server in a thread of the test process, on a free port of
127.0.0.1: for tests that need real sockets (stalled or aborted uploads) and the server's log
records (``log_config=None`` leaves uvicorn's loggers to propagate, so ``caplog`` sees them)."""

from __future__ import annotations

from api.main import create_app
from api.settings import Settings
from tests.support.threaded_server import ThreadedServer


class LiveApp(ThreadedServer):
    """``create_app(settings)`` served by uvicorn in a thread; stopped on exit."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(create_app(settings), name="live-app", log_config=None, lifespan="on")
