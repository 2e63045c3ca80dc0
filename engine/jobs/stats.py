"""The dashboard's figures: jobs per status, and jobs finished per minute lately. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.jobs.views import iso
from engine.states import JOB_TERMINAL


def job_stats(
    counts: dict[str, int], finished: Iterable[tuple[float, str]], *, now: float, minutes: int
) -> dict[str, Any]:
    """``finished``: (finished_at, status) of the jobs that ended in the last ``minutes``; they
    are counted per whole minute (oldest first, the current minute last)."""
    current = int(now // 60)
    first = current - minutes + 1
    buckets = [{status.value: 0 for status in JOB_TERMINAL} for _ in range(minutes)]
    for finished_at, status in finished:
        minute = int(finished_at // 60)
        if first <= minute <= current and status in buckets[0]:
            buckets[minute - first][status] += 1
    return {
        "counts": counts,
        "total": sum(counts.values()),
        "throughput": [
            {"minute": iso(float((first + i) * 60)), **bucket} for i, bucket in enumerate(buckets)
        ],
    }
