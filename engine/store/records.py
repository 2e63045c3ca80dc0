"""Records that cross the store boundary: what a claim hands the worker, what the worker hands
back when an attempt ends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from engine.states import AttemptStatus, TaskStatus


@dataclass(frozen=True, kw_only=True)
class ClaimedTask:
    id: int
    job_id: str
    name: str
    attempt: int
    tries: int
    max_attempts: int
    spec: dict[str, Any]
    upstream: tuple[str, ...]
    templated: bool
    expires_at: float | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> ClaimedTask:
        return cls(
            id=row.id,
            job_id=row.job_id,
            name=row.name,
            attempt=row.attempt,
            tries=row.tries,
            max_attempts=row.max_attempts,
            spec=row.spec,
            upstream=tuple(row.upstream or ()),
            templated=bool(row.templated),
            expires_at=row.expires_at,
        )

    @property
    def solo(self) -> bool:
        """The only task of its job: the job's outcome is this task's outcome."""
        return bool(self.spec.get("solo"))


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How one attempt ended, as the worker saw it."""

    task_id: int
    job_id: str
    attempt: int
    solo: bool
    #: the task's next status: succeeded, failed, skipped (``when`` false) or queued (retry)
    status: TaskStatus
    attempt_status: AttemptStatus
    finished_at: float
    #: counts against max_attempts (false for a ``when`` skip)
    counts: bool = True
    response_status: int | None = None
    response_headers: dict[str, str] | None = None
    response_body: Any = None
    response_truncated: bool | None = None
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    #: for a retry: when the next attempt is due
    next_attempt_at: float | None = None
    skip_reason: str | None = None
