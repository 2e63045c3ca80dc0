"""How the worker's loops survive a database that goes away: capped exponential backoff, and the
one rule that says which errors are worth waiting out."""

from __future__ import annotations

import random

from engine.errors import Unavailable


def is_transient(exc: BaseException) -> bool:
    """An error that may pass by itself: the database (or the network to it) is down, restarting,
    locked or busy. The store raises :class:`Unavailable` for all of these."""
    return isinstance(exc, Unavailable | OSError | TimeoutError)


class Backoff:
    """Delays of 0.1, 0.2, 0.4 ... seconds, capped, with up to 10% jitter; :meth:`reset` after a
    success. ``failures`` counts the delays handed out since."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self._first = first
        self._cap = cap
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        delay = min(self._cap, self._first * 2**self.failures)
        self.failures += 1
        return delay * (1 + random.random() / 10)
