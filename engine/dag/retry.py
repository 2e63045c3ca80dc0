"""Retry policy: how long attempt n waits, and whether an outcome is worth another attempt."""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass

from schemas.jobs import DEFAULT_RETRY_ON_STATUS, BackoffStrategy

#: Retry-After is honoured up to this many seconds (longer values are clamped to it)
MAX_RETRY_AFTER_SECONDS = 3600.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 1
    strategy: BackoffStrategy = BackoffStrategy.EXPONENTIAL
    backoff_seconds: float = 1.0
    max_backoff_seconds: float | None = None
    retry_on_status: frozenset[int] = frozenset(DEFAULT_RETRY_ON_STATUS)
    jitter: float = 0.1

    def base_delay(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` after attempt ``attempt`` (1-based) failed."""
        n = max(attempt, 1)
        if self.strategy is BackoffStrategy.FIXED:
            delay = self.backoff_seconds
        elif self.strategy is BackoffStrategy.LINEAR:
            delay = self.backoff_seconds * n
        else:
            delay = self.backoff_seconds * 2 ** min(n - 1, 62)
        if self.max_backoff_seconds is not None:
            delay = min(delay, self.max_backoff_seconds)
        return delay

    def delay(
        self, attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """The wait with jitter (up to ``jitter`` of the delay, added, never past the cap).

        A Retry-After from the target wins over the policy (clamped to an hour).
        """
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
        base = self.base_delay(attempt)
        delay = base + (rng or random).uniform(0, base * self.jitter)
        if self.max_backoff_seconds is not None:
            delay = min(delay, self.max_backoff_seconds)
        return delay

    def retries_status(self, status_code: int) -> bool:
        return status_code in self.retry_on_status


def policy_from_fields(
    *,
    max_attempts: int | None,
    strategy: str | None,
    backoff_seconds: float | None,
    max_backoff_seconds: float | None,
    retry_on_status: Collection[int] | None,
) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=max_attempts or 1,
        strategy=BackoffStrategy(strategy) if strategy else BackoffStrategy.EXPONENTIAL,
        backoff_seconds=1.0 if backoff_seconds is None else backoff_seconds,
        max_backoff_seconds=max_backoff_seconds,
        retry_on_status=frozenset(
            DEFAULT_RETRY_ON_STATUS if retry_on_status is None else retry_on_status
        ),
    )
