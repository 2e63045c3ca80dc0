"""Signals between the processes of one installation: wake-ups, cancels, event nudges, ticks.

Without a broker, :class:`LocalSignals` keeps them inside the process (other processes learn of
commits from the database: PostgreSQL ``NOTIFY``, the SQLite file watch, or their poll). With
``broker_url`` set, :func:`open_signals` returns the Redis or RabbitMQ backend; the clients are
optional extras, loaded only then.
"""

from __future__ import annotations

from engine.signals.base import (
    CANCEL,
    CHANNELS,
    DOWN,
    EVENTS,
    READY,
    RESUMED,
    SCHEDULES,
    BrokerSignals,
    LocalSignals,
    Signal,
    Signals,
    Subscription,
)
from engine.signals.urls import NAME_PREFIX, BrokerConfigError, backend_of, check_prefix, mask_url

__all__ = [
    "CANCEL",
    "CHANNELS",
    "DOWN",
    "EVENTS",
    "NAME_PREFIX",
    "READY",
    "RESUMED",
    "SCHEDULES",
    "BrokerConfigError",
    "BrokerSignals",
    "LocalSignals",
    "Signal",
    "Signals",
    "Subscription",
    "check_broker_url",
    "mask_url",
    "open_signals",
]


def check_broker_url(url: str | None, prefix: str = NAME_PREFIX) -> None:
    """Raise :class:`BrokerConfigError` when the URL or prefix cannot work here."""
    check_prefix(prefix)
    if url:
        backend_of(url)


def open_signals(url: str | None, prefix: str = NAME_PREFIX) -> Signals:
    """The signals of this process: the broker's when ``url`` is set, else local ones.
    Call :meth:`Signals.start` (in the event loop) before use."""
    if not url:
        return LocalSignals()
    check_prefix(prefix)
    if backend_of(url) == "redis":
        from engine.signals.redis_signals import RedisSignals

        return RedisSignals(url, prefix)
    from engine.signals.amqp_signals import AmqpSignals

    return AmqpSignals(url, prefix)
