"""Records that cross the store boundary: the task spec as stored, what a claim hands the
worker, what the worker hands back when an attempt ends."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Row

from engine.states import AttemptStatus, TaskStatus


@dataclass(frozen=True, kw_only=True, slots=True)
class StoredTaskSpec:
    """What a task needs at run time, fixed at submission (the ``tasks.spec`` JSON column).

    Job-level retry defaults are already folded in, and the interface schemas are the snapshot the
    job was validated with (editing an InterfaceMaster later does not change a stored job).
    """

    #: index in the job document, for the JSON pointers of render errors (``/tasks/<i>/...``)
    position: int = 0
    #: the job's only task: the job's outcome is this task's outcome
    solo: bool = False
    method: str = "GET"
    url: str = ""
    headers: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    body: Any = None
    timeout_sec: float | None = None
    follow_redirects: bool = False
    #: header names (lower case) the task marks secret, besides the configured ones
    secret_headers: list[str] | None = None
    when: str | None = None
    interface: str | None = None
    backoff_strategy: str | None = None
    backoff_seconds: float | None = None
    max_backoff_seconds: float | None = None
    retry_on_status: list[int] | None = None
    input_schema: Any = None
    output_schema: Any = None
    #: a ``for_each`` task: the template of its list, and how many instances may run at once
    for_each: str | None = None
    max_parallel: int | None = None
    #: an instance of a ``for_each`` task: the parent task's id, its item and the item's index
    parent_id: int | None = None
    item_index: int | None = None
    item: Any = None
    #: a sub-workflow task: ``{"name", "version", "params"}`` of the definition it runs
    workflow: dict[str, Any] | None = None
    #: ``headers``, ``params`` and ``body`` encrypted at rest (see ``engine.store.secrets``)
    sealed: str | None = None
    #: a callback task: seconds its callback may take (``callback.timeout_sec``), else None
    callback_timeout_sec: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _SPEC_FIELDS}
        if data["sealed"] is None:
            del data["sealed"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredTaskSpec:
        """Tolerant of rows written by older versions: missing keys take their defaults."""
        return cls(**{k: v for k, v in data.items() if k in _SPEC_FIELDS})


_SPEC_FIELDS = frozenset(f.name for f in fields(StoredTaskSpec))


@dataclass(frozen=True, kw_only=True)
class ClaimedTask:
    id: int
    job_id: str
    name: str
    attempt: int
    tries: int
    max_attempts: int
    spec: StoredTaskSpec
    upstream: tuple[str, ...]
    templated: bool
    expires_at: float | None
    #: why the encrypted request parts could not be decrypted (the attempt fails), else None
    secret_error: str | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> ClaimedTask:
        return cls(
            id=row.id,
            job_id=row.job_id,
            name=row.name,
            attempt=row.attempt,
            tries=row.tries,
            max_attempts=row.max_attempts,
            spec=StoredTaskSpec.from_json(row.spec),
            upstream=tuple(row.upstream or ()),
            templated=bool(row.templated),
            expires_at=row.expires_at,
        )

    @property
    def solo(self) -> bool:
        """The only task of its job: the job's outcome is this task's outcome."""
        return self.spec.solo


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """How one attempt ended, as the worker saw it."""

    task_id: int
    job_id: str
    attempt: int
    solo: bool
    #: the task's next status: succeeded, failed, skipped (``when`` false), queued (retry) or
    #: waiting (a callback task's call was answered)
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
    #: the ``for_each`` task this is an instance of (its accounting is updated with it)
    parent_id: int | None = None
    #: nothing was sent (the host is paused or at its cap): hand the task back until
    #: ``next_attempt_at`` as if never claimed, spending no attempt
    deferred: bool = False


@dataclass(frozen=True, kw_only=True)
class Transition:
    """A task status change made by a sweep rather than by the worker that ran the task (lost
    leases, expiries), reported so that it can be logged with its ids."""

    job_id: str
    task: str
    attempt: int
    old: TaskStatus
    new: TaskStatus
    error_type: str
