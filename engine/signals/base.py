"""Signals between processes: small messages that say "look at the database again".

The database holds every job, task and lease; a signal never carries state that exists nowhere
else. So a lost signal costs latency, never a job: whoever missed it finds the work at its next
poll. :class:`Signals` is the interface the engine uses; :class:`LocalSignals` serves one process
(no broker), :class:`BrokerSignals` is the common part of the Redis and RabbitMQ backends: one
connection loop with capped backoff, a state for ``/healthz``, a sender that never blocks the
caller, and a fan-out of received signals to the subscribers of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from engine.signals.urls import mask_url

log = logging.getLogger("jobqueue.signals")

#: tasks became ready: idle workers claim (payload unused)
READY = "ready"
#: a job was canceled while calls of it ran (payload: the job id): workers check their calls
CANCEL = "cancel"
#: something happened to a job that event streams show (payload: the job id)
EVENTS = "events"
#: schedule ticks (payload: the schedule's name)
SCHEDULES = "schedules"
CHANNELS = (READY, CANCEL, EVENTS, SCHEDULES)

#: not a broker channel: delivered to every subscriber when the broker came back after an
#: outage, since signals sent meanwhile were lost (look at the database now)
RESUMED = "resumed"
#: not a broker channel: delivered to every subscriber when the broker went away (poll the
#: database until it is back)
DOWN = "down"
#: what every subscription gets, whatever its channels
_STATE_CHANGES = frozenset({RESUMED, DOWN})


@dataclass(frozen=True)
class Signal:
    channel: str
    payload: str = ""


class Subscription:
    """The signals of some channels, as an async iterator; ``async with`` ends it."""

    def __init__(self, owner: Signals, channels: frozenset[str]) -> None:
        self._owner = owner
        self.channels = channels
        self._queue: asyncio.Queue[Signal] = asyncio.Queue()

    def deliver(self, signal: Signal) -> None:
        if signal.channel in self.channels or signal.channel in _STATE_CHANGES:
            self._queue.put_nowait(signal)

    def __aiter__(self) -> AsyncIterator[Signal]:
        return self

    async def __anext__(self) -> Signal:
        return await self._queue.get()

    def close(self) -> None:
        self._owner._subscriptions.discard(self)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Signals:
    """Publish and subscribe; what carries the signals is up to the subclass.

    ``publish`` never waits and never raises: a signal that cannot be sent is dropped (the
    database still holds what it was about). ``remote`` says whether signals leave the process.
    """

    remote = False

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    @property
    def state(self) -> str:
        """``local`` (no broker), ``connecting``, ``connected`` or ``down``."""
        return "local"

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    def health(self) -> dict[str, Any] | None:
        """What ``/healthz`` shows of the broker; None without one."""
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def publish(self, channel: str, payload: str = "") -> None:
        raise NotImplementedError

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        subscription = Subscription(self, frozenset(channels))
        self._subscriptions.add(subscription)
        return subscription

    def _deliver(self, signal: Signal) -> None:
        for subscription in list(self._subscriptions):
            subscription.deliver(signal)


class LocalSignals(Signals):
    """One process: a published signal goes to this process's subscribers, and no further.
    Other processes learn of commits through the database (PostgreSQL ``NOTIFY``, the SQLite
    file watch) or their poll."""

    def publish(self, channel: str, payload: str = "") -> None:
        self._deliver(Signal(channel, payload))


class BrokerSignals(Signals):
    """A broker between processes. Subclasses implement :meth:`_session` (connect, subscribe,
    call :meth:`_connected`, then deliver until the connection is lost) and :meth:`_send`."""

    remote = True
    #: seconds :meth:`start` waits for the first connection before the process goes on
    connect_wait = 5.0
    #: the longest wait between two reconnection attempts
    backoff_cap = 5.0

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.shown_url = mask_url(url)
        self._state = "connecting"
        self._outbox: asyncio.Queue[Signal] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._first_attempt = asyncio.Event()
        self._failures = 0

    @property
    def state(self) -> str:
        return self._state

    def health(self) -> dict[str, Any]:
        return {"url": self.shown_url, "state": "connected" if self.connected else "down"}

    def name(self, channel: str) -> str:
        """The broker-side name of a channel (``jobqueue:ready``, ``jobqueue.cancel`` ...)."""
        raise NotImplementedError

    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._run(), name="jobqueue-signals"),
            asyncio.create_task(self._send_loop(), name="jobqueue-signals-send"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), self.connect_wait)

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._disconnect()
        self._state = "down"

    def publish(self, channel: str, payload: str = "") -> None:
        # Not delivered here directly: the caller acts on its own process itself, and the
        # broker's copy coming back costs one more, harmless look at the database.
        if self._state == "connected":
            self._outbox.put_nowait(Signal(channel, payload))

    # --- for the backends -----------------------------------------------------------------
    async def _session(self) -> None:
        raise NotImplementedError

    async def _send(self, signals: list[Signal]) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        """Close whatever the last session left open (errors ignored)."""

    def _connected(self) -> None:
        """The session is subscribed: signals flow again."""
        if self._failures:
            log.warning("broker %s is back; signals flow again", self.shown_url)
            # Signals sent while it was away are lost: every subscriber looks again now.
            self._deliver(Signal(RESUMED))
        else:
            log.info("connected to broker %s", self.shown_url)
        self._failures = 0
        self._state = "connected"
        self._first_attempt.set()

    # --- the loops ------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await self._session()
                reason: BaseException = ConnectionError("the connection was closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = exc
            await self._lost(reason)

    async def _lost(self, reason: BaseException) -> None:
        was = self._state
        self._state = "down"
        self._first_attempt.set()
        await self._disconnect()
        # Drop what waited to be sent: nobody would get it, and the database has it all.
        while not self._outbox.empty():
            self._outbox.get_nowait()
        delay = min(self.backoff_cap, 0.1 * 2**self._failures)
        self._failures += 1
        if was != "down":
            self._deliver(Signal(DOWN))
            log.warning(
                "broker %s is down (%s); falling back to polling the database, reconnecting "
                "with backoff up to %.0f s",
                self.shown_url,
                _reason(reason),
                self.backoff_cap,
            )
        else:
            log.debug("broker %s still down (%s)", self.shown_url, _reason(reason))
        await asyncio.sleep(delay)

    async def _send_loop(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            unique = list(dict.fromkeys(batch))  # ten "ready" in one go wake as well as one
            try:
                await self._send(unique)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The session notices a dead connection by itself; a lost signal is harmless.
                log.debug("could not send %d signals: %s", len(unique), _reason(exc))


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
