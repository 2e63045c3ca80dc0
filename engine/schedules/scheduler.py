"""The scheduler loop: every process that runs a worker runs one (unless turned off).

It wakes at the earliest next tick across schedules (one indexed query on ``next_fire_at``),
at the latest every :data:`MAX_SLEEP` seconds (to see schedules other processes created), or
at once when this process changed a schedule. Several processes firing the same tick is
expected: the database keeps one job per tick (:meth:`Store.fire`). Like the worker's loops it
survives a database that goes away (logs, backs off, goes on); any other error stops it, and
then the worker it runs in, so that ``/healthz`` and the exit code say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from engine.runtime.backoff import Backoff, is_transient
from engine.schedules.book import ScheduleBook

log = logging.getLogger("jobqueue.scheduler")

#: the longest the loop sleeps without looking at the schedules again
MAX_SLEEP = 1.0


class Scheduler:
    def __init__(self, book: ScheduleBook, *, max_sleep: float = MAX_SLEEP) -> None:
        self._book = book
        self._max_sleep = max_sleep
        self._wake = asyncio.Event()
        book.on_change.append(self._wake.set)

    def close(self) -> None:
        """Stop listening for this process's schedule changes."""
        with contextlib.suppress(ValueError):
            self._book.on_change.remove(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Fire due ticks until ``stop`` is set; raises on an error that is not transient."""
        backoff = Backoff()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self._book.fire_due(time.time())
                    delay = await self._sleep_time()
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    delay = backoff.next_delay()
                    level = logging.WARNING if backoff.failures == 1 else logging.DEBUG
                    log.log(level, "firing schedules failed (%s); retrying in %.1f s", exc, delay)
                else:
                    if backoff.failures:
                        log.warning("firing schedules works again")
                        backoff.reset()
                await self._sleep(stop, delay)
        finally:
            self.close()

    async def _sleep_time(self) -> float:
        earliest = await self._book.next_fire()
        if earliest is None:
            return self._max_sleep
        return min(self._max_sleep, max(earliest - time.time(), 0.0))

    async def _sleep(self, stop: asyncio.Event, delay: float) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
