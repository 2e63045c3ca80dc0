"""Wake-ups: how a worker learns that tasks became ready without waiting for its next poll.

In one process an :class:`asyncio.Event` is enough (the API's submit and the embedded worker share
it). Commits of other processes set it too: on PostgreSQL through ``LISTEN``/``NOTIFY``
(:class:`~engine.store.dialects.ReadyListener`), on SQLite through a watch of the WAL file
(:class:`~engine.store.dialects.FileChangeWatch`). Polling every ``JOBQUEUE_POLL_INTERVAL``
seconds remains the backstop.
"""

from __future__ import annotations

import asyncio
import contextlib


class Wakeup:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until notified or ``timeout`` passes; true when notified."""
        if not self._event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout)
        notified = self._event.is_set()
        self._event.clear()
        return notified
