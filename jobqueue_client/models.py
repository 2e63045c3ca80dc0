"""Typed answers of the REST API: frozen, keyword-only dataclasses built from its JSON.

Every class keeps the document it was built from in ``raw`` (left out of ``repr`` and ``==``),
so a field the server adds later is still reachable. Timestamps are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: the statuses after which a job no longer changes on its own
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})
#: every status a task can have (``waiting``: a callback task waits for its callback)
TASK_STATUSES = frozenset(
    {"pending", "queued", "running", "waiting", "succeeded", "failed", "canceled", "skipped"}
)

Document = dict[str, Any]


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _problems(value: Any) -> tuple[Document, ...]:
    return tuple(item for item in value or () if isinstance(item, dict))


@dataclass(frozen=True, kw_only=True)
class Job:
    """A job's id and status, as answered by submit, cancel and retry.

    ``replayed`` is true when submit found the job of an earlier request with the same
    Idempotency-Key (the status is then that job's current one).
    """

    job_id: str
    status: str
    replayed: bool = False
    warnings: tuple[Document, ...] = ()
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document, *, replayed: bool = False) -> Job:
        return cls(
            job_id=data["job_id"],
            status=data["status"],
            replayed=replayed,
            warnings=_problems(data.get("warnings")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class Validation:
    """The answer of validate for a valid document (an invalid one raises InvalidJob)."""

    valid: bool
    warnings: tuple[Document, ...] = ()
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document) -> Validation:
        return cls(valid=bool(data["valid"]), warnings=_problems(data.get("warnings")), raw=data)


def _job_fields(data: Document) -> dict[str, Any]:
    """What every view of a job carries: its id, name, status, priority, tags and times."""
    return {
        "job_id": data["job_id"],
        "name": data.get("name"),
        "status": data["status"],
        "priority": int(data.get("priority") or 0),
        "tags": tuple(data.get("tags") or ()),
        "scheduled_at": _time(data.get("scheduled_at")),
        "created_at": _time(data.get("created_at")),
        "started_at": _time(data.get("started_at")),
        "finished_at": _time(data.get("finished_at")),
    }


@dataclass(frozen=True, kw_only=True)
class JobSummary:
    """One job of a list page."""

    job_id: str
    name: str | None
    status: str
    priority: int
    tags: tuple[str, ...]
    n_tasks: int
    scheduled_at: datetime | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document) -> JobSummary:
        return cls(**_job_fields(data), n_tasks=int(data.get("n_tasks") or 0), raw=data)


@dataclass(frozen=True, kw_only=True)
class JobPage:
    """A page of jobs, newest first; pass ``next_cursor`` back for the next one (``None``: last)."""

    items: tuple[JobSummary, ...]
    next_cursor: str | None
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document) -> JobPage:
        return cls(
            items=tuple(JobSummary.from_dict(item) for item in data["items"]),
            next_cursor=data.get("next_cursor"),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class TaskDetail:
    """One task of a job's detail."""

    name: str
    status: str
    attempt: int
    max_attempts: int | None
    method: str | None
    url: str | None
    timeout_sec: float | None
    depends_on: tuple[str, ...]
    skip_reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document) -> TaskDetail:
        return cls(
            name=data["name"],
            status=data["status"],
            attempt=int(data.get("attempt") or 0),
            max_attempts=data.get("max_attempts"),
            method=data.get("method"),
            url=data.get("url"),
            timeout_sec=data.get("timeout_sec"),
            depends_on=tuple(data.get("depends_on") or ()),
            skip_reason=data.get("skip_reason"),
            started_at=_time(data.get("started_at")),
            finished_at=_time(data.get("finished_at")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class JobDetail:
    """A job and its tasks. ``attempt``, ``method``, ``url``, ... describe the only task of a
    single-task job and are ``None`` for a job of several tasks."""

    job_id: str
    name: str | None
    status: str
    priority: int
    tags: tuple[str, ...]
    attempt: int | None
    max_attempts: int | None
    method: str | None
    url: str | None
    timeout_sec: float | None
    ttl_seconds: int | None
    warnings: tuple[Document, ...]
    tasks: tuple[TaskDetail, ...]
    scheduled_at: datetime | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document) -> JobDetail:
        return cls(
            **_job_fields(data),
            attempt=data.get("attempt"),
            max_attempts=data.get("max_attempts"),
            method=data.get("method"),
            url=data.get("url"),
            timeout_sec=data.get("timeout_sec"),
            ttl_seconds=data.get("ttl_seconds"),
            warnings=_problems(data.get("warnings")),
            tasks=tuple(TaskDetail.from_dict(task) for task in data.get("tasks") or ()),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class TaskResult:
    """The last stored response and error of one task; ``attempts`` is its claim count."""

    name: str
    status: str
    response_status: int | None
    response_headers: Document | None
    response_body: Any
    response_truncated: bool | None
    error: Document | None
    duration_ms: float | None
    attempts: int
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, name: str, data: Document) -> TaskResult:
        return cls(
            name=name,
            status=data["status"],
            response_status=data.get("response_status"),
            response_headers=data.get("response_headers"),
            response_body=data.get("response_body"),
            response_truncated=data.get("response_truncated"),
            error=data.get("error"),
            duration_ms=data.get("duration_ms"),
            attempts=int(data.get("attempts") or 0),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class JobResult:
    """A job's responses: the only sink's at the top level (all ``None`` when the job has
    several sinks), every task's in ``tasks``."""

    job_id: str
    status: str
    response_status: int | None
    response_headers: Document | None
    response_body: Any
    response_truncated: bool | None
    error: Document | None
    duration_ms: float | None
    tasks: dict[str, TaskResult]
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @property
    def ended(self) -> bool:
        """True once the job is succeeded, failed or canceled."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def from_dict(cls, data: Document) -> JobResult:
        tasks = data.get("tasks") or {}
        return cls(
            job_id=data["job_id"],
            status=data["status"],
            response_status=data.get("response_status"),
            response_headers=data.get("response_headers"),
            response_body=data.get("response_body"),
            response_truncated=data.get("response_truncated"),
            error=data.get("error"),
            duration_ms=data.get("duration_ms"),
            tasks={name: TaskResult.from_dict(name, task) for name, task in tasks.items()},
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One attempt of a task (``status``: running, succeeded, failed, lost, skipped, ...)."""

    attempt: int
    status: str
    worker: str | None
    response_status: int | None
    error: Document | None
    duration_ms: float | None
    started_at: datetime | None
    finished_at: datetime | None
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document) -> Attempt:
        return cls(
            attempt=int(data["attempt"]),
            status=data["status"],
            worker=data.get("worker"),
            response_status=data.get("response_status"),
            error=data.get("error"),
            duration_ms=data.get("duration_ms"),
            started_at=_time(data.get("started_at")),
            finished_at=_time(data.get("finished_at")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class CallbackResult:
    """The task a callback finished and how it ended (``failed`` when its output did not match
    the task's output schema: see ``error``)."""

    job_id: str
    task: str
    status: str
    error: Document | None
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document) -> CallbackResult:
        return cls(
            job_id=data["job_id"],
            task=data["task"],
            status=data["status"],
            error=data.get("error"),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class WebhookDelivery:
    """One completion webhook of a job (``status``: pending, delivered, failed), with its tries
    (dicts: ``attempt``, ``at``, ``status_code``, ``error``, ``next_attempt_at``)."""

    delivery_id: str
    job_status: str
    url: str
    status: str
    attempts: tuple[Document, ...]
    next_attempt_at: datetime | None
    raw: Document = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Document) -> WebhookDelivery:
        return cls(
            delivery_id=data["delivery_id"],
            job_status=data["job_status"],
            url=data["url"],
            status=data["status"],
            attempts=_problems(data.get("attempts")),
            next_attempt_at=_time(data.get("next_attempt_at")),
            raw=data,
        )
