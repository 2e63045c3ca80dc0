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
from collections.abc import Iterable


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


class JobSignals:
    """Wake-ups per job, for the readers of job events: ``notify`` sets the event of every
    reader of those jobs. Commits of this process call it directly; other processes' commits
    reach it through PostgreSQL ``NOTIFY`` (SQLite readers poll)."""

    def __init__(self) -> None:
        self._readers: dict[str, set[asyncio.Event]] = {}

    def subscribe(self, job_id: str) -> asyncio.Event:
        signal = asyncio.Event()
        self._readers.setdefault(job_id, set()).add(signal)
        return signal

    def unsubscribe(self, job_id: str, signal: asyncio.Event) -> None:
        readers = self._readers.get(job_id)
        if readers is not None:
            readers.discard(signal)
            if not readers:
                del self._readers[job_id]

    @property
    def watched(self) -> int:
        """How many jobs have a reader now."""
        return len(self._readers)

    def notify(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            for signal in self._readers.get(job_id, ()):
                signal.set()

    def notify_all(self) -> None:
        self.notify(list(self._readers))
