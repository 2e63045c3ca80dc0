"""Cron schedules on PostgreSQL: the integration suite again (one code path, two backends),
and one job per tick across two scheduler processes.

The in-process tests are test_schedules.py's own; this package's conftest swaps the database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.target_server import TargetServer
from tests.integration.test_schedules import *  # noqa: F403
from tests.integration.test_schedules_processes import check_one_job_per_tick, run_two_schedulers


@pytest.mark.slow
async def test_two_scheduler_processes_fire_each_tick_exactly_once(
    tmp_path: Path, target_server: TargetServer, db_url: str
) -> None:
    calls = await asyncio.to_thread(run_two_schedulers, tmp_path, target_server, db_url)
    check_one_job_per_tick(calls)
