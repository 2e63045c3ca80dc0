"""Job events on PostgreSQL: the engine's event suite, and the API process streaming what a
worker in another process does (carried by LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine import Engine
from tests.integration.test_events import *  # noqa: F403
from tests.integration.test_events_api import run_events_across_processes
from tests.support.config import make_config
from tests.support.gated_target import GatedTarget
from tests.support.store import store_of, submit


@pytest.mark.slow
async def test_a_worker_in_another_process_is_streamed_through_notify(
    tmp_path: Path, gated: GatedTarget, db_url: str
) -> None:
    await asyncio.to_thread(run_events_across_processes, tmp_path, gated, db_url)


async def test_another_engines_commit_wakes_this_engines_readers_of_that_job(
    db_url: str, gated: GatedTarget
) -> None:
    """The wake-up itself, without the backstop poll: only a NOTIFY can set the signal."""
    reader = await Engine.open(make_config(db_url))
    writer = await Engine.open(make_config(db_url))
    listener = store_of(reader).events_listener(store_of(reader).job_signals.notify)
    assert listener is not None
    try:
        await listener.start()
        job_id = await submit(writer, {"url": gated.url("/gate/never")})
        signal = store_of(reader).job_signals.subscribe(job_id)
        await writer.cancel(job_id)
        await asyncio.wait_for(signal.wait(), 10)
    finally:
        await listener.close()
        await writer.close()
        await reader.close()
