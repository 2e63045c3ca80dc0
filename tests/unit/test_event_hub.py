"""The event hub's broker follower: an unexpected error is logged, never silent, and the next
waiting reader starts a new follower."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from engine.jobs.feed import EventHub
from engine.store.wakeup import JobSignals


class BrokenSignals:
    """A broker whose subscription fails once, then delivers nothing."""

    remote = True

    def __init__(self) -> None:
        self.subscribed = 0

    def subscribe(self, channels: Any) -> Any:
        self.subscribed += 1
        if self.subscribed == 1:
            raise RuntimeError("subscription lost")
        return _Silent()


class _Silent:
    async def __aenter__(self) -> _Silent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> _Silent:
        return self

    async def __anext__(self) -> Any:
        await asyncio.Event().wait()


async def test_a_failed_follower_is_logged_and_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signals = BrokenSignals()
    hub = EventHub(SimpleNamespace(job_signals=JobSignals()), signals)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="jobqueue.events"):
        await hub.ensure_listening()
        first = hub._follower
        assert first is not None
        await first
    assert "following the broker's job events failed" in caplog.text
    await hub.ensure_listening()
    assert hub._follower is not first and signals.subscribed >= 1
    await asyncio.sleep(0)
    assert signals.subscribed == 2
    await hub.close()
