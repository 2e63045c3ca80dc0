"""PostgreSQL fixtures: every test gets a fresh database on the server at 127.0.0.1:5432."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from ulid import ULID

PG_ADMIN_DSN = os.environ.get("JOBQUEUE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def _database_url(database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the server and with the user of PG_ADMIN_DSN."""
    url = make_url(PG_ADMIN_DSN).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/pg/" in str(item.path):
            item.add_marker(pytest.mark.pg)


@pytest.fixture
async def db_url() -> AsyncIterator[str]:
    """Overrides the SQLite ``db_url``: the same tests then run against PostgreSQL."""
    try:
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN_DSN}: {exc}")
    name = f"jq_{str(ULID()).lower()}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
