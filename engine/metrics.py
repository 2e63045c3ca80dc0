"""Prometheus metrics of one engine (one process), named ``jobqueue_*``.

Counters and the call-duration histogram are updated in memory on the hot path (a label lookup
and an add); the gauges that need the database (queue depth, age of the oldest queued task) are
computed when ``/metrics`` is scraped. Each engine has its own registry, so several engines in
one process (tests) do not share figures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from engine.http import Executor, HttpRequest, HttpResponse
from engine.states import TaskStatus
from engine.store import Outcome, Transition

#: call durations from a millisecond to a minute
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.tasks_finished = Counter(
            "jobqueue_tasks_finished", "Tasks that ended, by final status", ["status"], registry=r
        )
        self.attempts = Counter(
            "jobqueue_attempts", "Attempts that ended, by outcome", ["outcome"], registry=r
        )
        self.call_seconds = Histogram(
            "jobqueue_http_call_duration_seconds",
            "Duration of the HTTP calls of tasks, by target host",
            ["host"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.lease_losses = Counter(
            "jobqueue_lease_losses", "Running tasks whose worker's lease expired", registry=r
        )
        self.queue_depth = Gauge(
            "jobqueue_queue_depth", "Tasks queued and due now (at scrape time)", registry=r
        )
        self.oldest_queued = Gauge(
            "jobqueue_oldest_queued_age_seconds",
            "How long the oldest due queued task has been waiting (0 when none)",
            registry=r,
        )
        self.tasks_waiting = Gauge(
            "jobqueue_tasks_waiting",
            "Callback tasks waiting for their callback (at scrape time)",
            registry=r,
        )
        self.workers_alive = Gauge(
            "jobqueue_workers_alive", "Workers of this process that are running", registry=r
        )

    def recorded(self, outcome: Outcome) -> None:
        """An attempt's outcome was recorded (the fence let it through). A callback task's
        answered call ends nothing yet: its attempt is counted when the callback comes."""
        if outcome.status is TaskStatus.WAITING:
            return
        self.attempts.labels(outcome.attempt_status.value).inc()
        if outcome.status is not TaskStatus.QUEUED:
            self.tasks_finished.labels(outcome.status.value).inc()

    def swept(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            self.attempts.labels("lost" if t.error_type == "lost" else t.error_type).inc()
            if t.error_type == "lost":
                self.lease_losses.inc()
            if t.new is TaskStatus.FAILED:
                self.tasks_finished.labels(TaskStatus.FAILED.value).inc()

    def scraped(
        self, *, depth: int, oldest_due: float | None, workers_alive: int, waiting: int = 0
    ) -> bytes:
        self.queue_depth.set(depth)
        self.tasks_waiting.set(waiting)
        self.oldest_queued.set(max(0.0, time.time() - oldest_due) if oldest_due else 0.0)
        self.workers_alive.set(workers_alive)
        return generate_latest(self.registry)


class MeteredExecutor:
    """An :class:`Executor` that times every call into ``jobqueue_http_call_duration_seconds``."""

    def __init__(self, inner: Executor, metrics: Metrics) -> None:
        self._inner = inner
        self._histogram = metrics.call_seconds

    async def send(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        try:
            return await self._inner.send(request)
        finally:
            host = urlsplit(request.url).hostname or "unknown"
            self._histogram.labels(host).observe(time.perf_counter() - start)

    async def aclose(self) -> None:
        await self._inner.aclose()
