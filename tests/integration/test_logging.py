"""Logs: a line per task transition with its ids, warnings for lost leases, JSON on request,
no secrets, no Alembic chatter."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from api.logs import configure_logging
from engine import Engine
from schemas.jobs import parse_job_document
from tests.integration.target_server import TargetServer
from tests.support.config import make_config
from tests.support.store import store_of
from tests.support.waiting import job_ends


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    configure_logging("info", "json")
    yield capsys
    logging.getLogger("jobqueue").handlers.clear()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line]


async def test_each_transition_is_one_json_line_with_ids_and_no_secret(
    json_logs: pytest.CaptureFixture[str], running: Engine, target_server: TargetServer
) -> None:
    doc = {"url": target_server.url("/status/404"), "headers": {"Authorization": "Bearer s3cr3t"}}
    job_id = (await running.submit(parse_job_document(doc), single_call=True)).job_id
    assert (await job_ends(running, job_id))["status"] == "failed"
    lines = _lines(json_logs)
    mine = [line for line in lines if line.get("job_id") == job_id]
    assert [(m["old_status"], m["new_status"]) for m in mine] == [
        ("queued", "running"),
        ("running", "failed"),
    ]
    failed = mine[-1]
    assert failed["level"] == "INFO" and failed["task"] == "main" and failed["attempt"] == 1
    assert failed["error_type"] == "http_status" and failed["duration_ms"] >= 0
    assert "s3cr3t" not in str(lines)


async def test_a_lost_lease_is_a_warning(
    json_logs: pytest.CaptureFixture[str], engine: Engine, target_server: TargetServer
) -> None:
    doc = parse_job_document({"url": target_server.url("/json")})
    job_id = (await engine.submit(doc, single_call=True)).job_id
    (claimed,) = await store_of(engine).claim(worker="gone", limit=1, lease_seconds=1)
    await engine.reap(now=time.time() + 60)
    (line,) = [x for x in _lines(json_logs) if x.get("job_id") == job_id]
    assert line["level"] == "WARNING"
    assert (line["old_status"], line["new_status"], line["error_type"]) == (
        "running",
        "queued",
        "lost",
    )
    assert line["attempt"] == claimed.attempt


async def test_opening_a_fresh_database_says_nothing_at_info(
    json_logs: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    engine = await Engine.open(make_config(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"))
    await engine.close()
    captured = json_logs.readouterr()
    assert "Context impl" not in captured.err + captured.out
    assert "Running upgrade" not in captured.err + captured.out
    assert logging.getLogger("alembic").getEffectiveLevel() >= logging.WARNING
