"""Live job events: a snapshot of the job, then each stored change in order, until it ends.

A reader pulls from the ``job_events`` table (:mod:`engine.store.events`) at its own pace, so a
slow reader never slows a worker and holds no more than one page in memory; one that falls far
behind gets a fresh snapshot instead of the backlog. Between pages it sleeps until something may
have changed: a commit of this process (:class:`~engine.store.wakeup.JobSignals`), a PostgreSQL
``NOTIFY`` from another process (:class:`EventHub`), or on SQLite a change of the WAL file
(another process committed); a query every :data:`BACKSTOP_SECONDS` covers a lost
notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from engine.jobs.views import iso
from engine.signals import DOWN, EVENTS, RESUMED, Signals
from engine.states import JOB_TERMINAL, JobStatus
from engine.store import Store
from engine.store.dialects import EventsListener, FileChangeWatch

log = logging.getLogger("jobqueue.events")

#: events read per query
PAGE = 500
#: a reader further behind than this gets a fresh snapshot instead of the backlog
MAX_BEHIND = 2000
#: how often a waiting reader looks at the SQLite WAL file for other processes' commits
WATCH_SECONDS = 0.1
#: a waiting reader queries at least this often, whatever it was told
BACKSTOP_SECONDS = 1.0

#: (job detail, id of the job's latest event when the detail was read)
Snapshot = tuple[dict[str, Any], int]


class EventHub:
    """What carries other processes' events to this process's readers: the broker's ``events``
    channel when one is configured, else the PostgreSQL listener.

    Started by the first reader and kept until :meth:`close`; a listener that cannot start (or
    lost its connection) is retried by the next reader that waits, which meanwhile polls.
    """

    def __init__(self, store: Store, signals: Signals | None = None) -> None:
        self._store = store
        self._signals = signals
        self._follower: asyncio.Task[None] | None = None
        self._listener: EventsListener | None = None
        self._lock = asyncio.Lock()
        #: set when the process stops: every stream ends without waiting for its job
        self.closing = False

    @property
    def remote(self) -> bool:
        """Whether a broker carries other processes' events."""
        return self._signals is not None and self._signals.remote

    def end_streams(self) -> None:
        """End every open stream now (the server is stopping; clients reconnect elsewhere or
        later, with their last event id)."""
        self.closing = True
        self._store.job_signals.notify_all()

    async def ensure_listening(self) -> None:
        if self.remote:
            if self._follower is None or self._follower.done():  # a failed one starts again
                self._follower = asyncio.create_task(self._follow(), name="jobqueue-events")
            return
        async with self._lock:
            if self._listener is None:
                self._listener = self._store.events_listener(self._store.job_signals.notify)
                if self._listener is None:
                    return
            if self._listener.listening:
                return
            try:
                await self._listener.start()
            except Exception as exc:
                log.warning("cannot listen for job events (%r); streams poll meanwhile", exc)

    async def _follow(self) -> None:
        """A broker's ``events`` signals (comma-separated job ids) wake those jobs' readers;
        after an outage every reader looks at the database again. An unexpected error is
        logged and ends this follower; streams poll meanwhile and the next waiting reader
        starts a new one."""
        assert self._signals is not None
        try:
            async with self._signals.subscribe([EVENTS]) as signals:
                async for signal in signals:
                    if signal.channel == EVENTS:
                        self._store.job_signals.notify(signal.payload.split(","))
                    elif signal.channel in (RESUMED, DOWN):
                        self._store.job_signals.notify_all()
        except Exception:
            log.exception("following the broker's job events failed; streams poll meanwhile")

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        if self._listener is not None:
            await self._listener.close()
            self._listener = None


def event_message(job_id: str, event_id: int, at: float, payload: dict[str, Any]) -> dict[str, Any]:
    """A stored event as the streams send it."""
    message: dict[str, Any] = {"id": event_id, "type": payload["type"], "job_id": job_id}
    if payload["type"] == "task":
        message |= {
            "task": payload["task"],
            "status": payload["status"],
            "attempt": payload["attempt"],
            "at": iso(at),
            "error": payload.get("error"),
        }
        if payload.get("next_attempt_at") is not None:
            message["next_attempt_at"] = iso(payload["next_attempt_at"])
    else:
        message |= {"status": payload["status"], "at": iso(at)}
    return message


def _ends(message: dict[str, Any]) -> bool:
    return message["type"] == "job" and JobStatus(message["status"]) in JOB_TERMINAL


class JobFeed:
    """One reader of one job's events (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        hub: EventHub,
        job_id: str,
        snapshot: Callable[[], Awaitable[Snapshot]],
    ) -> None:
        self._store = store
        self._hub = hub
        self._job_id = job_id
        self._snapshot = snapshot

    async def _snapshot_message(self) -> tuple[dict[str, Any], int]:
        detail, cursor = await self._snapshot()
        return {"id": cursor, "type": "snapshot", "job": detail}, cursor

    async def messages(self, after: int | None) -> AsyncGenerator[dict[str, Any]]:
        """Without ``after``: a snapshot, then the events after it. With ``after`` (a
        reconnecting reader's last event id): the events after that id."""
        signal = self._store.job_signals.subscribe(self._job_id)
        # with a broker, other processes' events are announced on it: no file to watch
        watch = None if self._hub.remote else self._store.change_watch()
        try:
            if after is None:
                message, cursor = await self._snapshot_message()
                yield message
                if JobStatus(message["job"]["status"]) in JOB_TERMINAL:
                    return
            else:
                detail, _ = await self._snapshot()  # the job exists and is the reader's
                cursor = after
                if JobStatus(detail["status"]) in JOB_TERMINAL and not await self._store.job_events(
                    self._job_id, after=cursor, limit=1
                ):
                    return
            while not self._hub.closing:
                signal.clear()
                rows = await self._store.job_events(self._job_id, after=cursor, limit=PAGE)
                if len(rows) == PAGE and (
                    await self._store.events_behind(self._job_id, cursor) > MAX_BEHIND
                ):
                    message, cursor = await self._snapshot_message()
                    yield message
                    if JobStatus(message["job"]["status"]) in JOB_TERMINAL:
                        return
                    continue
                for row in rows:
                    message = event_message(self._job_id, row.id, row.at, row.payload)
                    cursor = row.id
                    yield message
                    if _ends(message):
                        return
                if len(rows) < PAGE:
                    await self._wait(signal, watch)
        finally:
            self._store.job_signals.unsubscribe(self._job_id, signal)

    async def _wait(self, signal: asyncio.Event, watch: FileChangeWatch | None) -> None:
        """Until this process committed an event of the job, another process may have, or the
        backstop interval passed."""
        await self._hub.ensure_listening()
        if watch is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), BACKSTOP_SECONDS)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BACKSTOP_SECONDS
        while loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), WATCH_SECONDS)
            if signal.is_set() or watch.changed():
                return
