"""The real REST app (``api.main.create_app``) under uvicorn on 127.0.0.1, in a daemon thread.

It opens its own engine on the given SQLite file, with the embedded worker, private targets
allowed and short polls, exactly as ``jobqueue serve`` would::

    with ApiServer(tmp_path / "api.db") as server:
        httpx.get(f"{server.base_url}/healthz")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from api.main import create_app
from api.settings import Settings
from tests.support.threaded_server import ThreadedServer


class ApiServer(ThreadedServer):
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
        #: the database URL, for a CLI command or an engine of the test on the same database
        self.db_url: str = values["db_url"]
        app = create_app(Settings(**values))
        super().__init__(app, name="jobqueue-api", startup_timeout=startup_timeout, lifespan="on")
