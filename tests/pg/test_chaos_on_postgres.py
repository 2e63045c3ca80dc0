"""Chaos on PostgreSQL: workers and the API SIGKILLed while 2,000 jobs run.

The scenario and its checks are in tests/support/chaos.py (shared with tests/integration).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.target_server import TargetServer
from tests.support.chaos import run_chaos


@pytest.mark.slow
async def test_kills_lose_no_job_and_repeat_only_calls_in_flight(
    tmp_path: Path, target_server: TargetServer, db_url: str
) -> None:
    await asyncio.to_thread(run_chaos, tmp_path, target_server, db_url, "PostgreSQL")
