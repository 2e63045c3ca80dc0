"""Fixtures shared by every test depth."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from api.settings import Settings
from engine import Engine, EngineConfig
from tests.integration.target_server import TargetServer, target_server
from tests.support.brokers import broker, rabbitmq_broker, redis_broker
from tests.support.config import make_config
from tests.support.demo_server import DemoServer

__all__ = ["broker", "rabbitmq_broker", "redis_broker", "target_server"]

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No proxy and no JOBQUEUE_* setting of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("JOBQUEUE_") or name.lower() in _PROXY_VARS:
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'jobqueue.db'}"


@pytest.fixture
def config(db_url: str) -> EngineConfig:
    return make_config(db_url)


@pytest.fixture
async def engine(config: EngineConfig) -> AsyncIterator[Engine]:
    opened = await Engine.open(config)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """The REST app in-process, on an engine whose worker the test starts when it wants."""
    app = create_app(Settings(db_url=engine.config.db_url), engine=engine)
    app.state.engine = engine
    app.state.settings = Settings(db_url=engine.config.db_url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://jobqueue.test") as http:
        yield http


@pytest.fixture
def demo() -> Iterator[DemoServer]:
    """The demo API of examples/demo_api on a free port of 127.0.0.1."""
    with DemoServer() as server:
        yield server


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """What a user exports to run CLI commands and examples: a database of this test's own,
    private targets allowed (the demo API is on 127.0.0.1), a short poll."""
    monkeypatch.setenv("JOBQUEUE_DB_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("JOBQUEUE_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("JOBQUEUE_POLL_INTERVAL", "0.05")
    return tmp_path


@pytest.fixture
async def running(engine: Engine) -> AsyncIterator[Engine]:
    """The engine with its embedded worker running in the background."""
    engine.start_worker()
    yield engine
    await engine.stop_workers()


__all__ += ["TargetServer"]
