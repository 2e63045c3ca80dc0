"""Backoff arithmetic: fixed, linear, exponential, the cap, jitter bounds, Retry-After."""

from __future__ import annotations

import random

import pytest

from engine.dag.retry import MAX_RETRY_AFTER_SECONDS, RetryPolicy, policy_from_fields
from schemas.jobs import BackoffStrategy


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (BackoffStrategy.FIXED, [2.0, 2.0, 2.0, 2.0]),
        (BackoffStrategy.LINEAR, [2.0, 4.0, 6.0, 8.0]),
        (BackoffStrategy.EXPONENTIAL, [2.0, 4.0, 8.0, 16.0]),
    ],
)
def test_base_delays(strategy: BackoffStrategy, expected: list[float]) -> None:
    policy = RetryPolicy(strategy=strategy, backoff_seconds=2.0)
    assert [policy.base_delay(n) for n in (1, 2, 3, 4)] == expected


def test_cap_applies() -> None:
    policy = RetryPolicy(backoff_seconds=1.0, max_backoff_seconds=5.0)
    assert policy.base_delay(10) == 5.0
    assert policy.base_delay(10_000) == 5.0


def test_jitter_stays_within_ten_percent_above() -> None:
    policy = RetryPolicy(strategy=BackoffStrategy.FIXED, backoff_seconds=1.0)
    rng = random.Random(7)
    delays = [policy.delay(1, rng=rng) for _ in range(200)]
    assert all(1.0 <= d <= 1.1 for d in delays)
    assert len(set(delays)) > 100


def test_retry_after_wins_and_is_bounded() -> None:
    policy = RetryPolicy(backoff_seconds=100.0)
    assert policy.delay(1, retry_after=2.5) == 2.5
    assert policy.delay(1, retry_after=10**9) == MAX_RETRY_AFTER_SECONDS


def test_fractional_backoff_and_defaults() -> None:
    policy = policy_from_fields(
        max_attempts=None,
        strategy="linear",
        backoff_seconds=0.1,
        max_backoff_seconds=None,
        retry_on_status=None,
    )
    assert policy.max_attempts == 1
    assert policy.base_delay(3) == pytest.approx(0.3)
    assert policy.retries_status(503) and not policy.retries_status(404)
