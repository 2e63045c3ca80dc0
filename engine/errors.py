"""Errors the engine raises, and the problem records of a validation report.

Exception tree (``api/errors.py`` maps each to exactly one HTTP status)::

    JobQueueError
    ├── JobInvalid          422  the creation-time report: every problem at once
    ├── NotFound            404  unknown (or expired, or another owner's) job / task / master
    ├── Conflict            409  wrong state: cancel a finished job, retry a running one, ...
    ├── IdempotencyMismatch 422  same Idempotency-Key, different body
    ├── TooLarge            413  a limit on size was exceeded
    ├── Unauthorized        401  no API key, or an unknown or revoked one
    ├── Forbidden           403  the key is not an admin key
    ├── Unavailable         503  the database does not answer (down, restarting, locked)
    ├── WorkflowFileError   422  a YAML workflow file that cannot be read (engine.jobs.yaml_reader)
    ├── TemplateError       ---  a template failed to render: the task fails, never the request
    └── WorkerFailed        503  a worker of this process stopped on its own (``/healthz``)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One finding of creation-time validation, precise enough to fix the workflow."""

    code: str
    message: str
    location: str = ""
    task: str | None = None
    edge: str | None = None
    expected: Any = None
    actual: Any = None
    line: int | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.line is None:
            data.pop("line")
            data.pop("column")
        return data


class JobQueueError(Exception):
    """Base of every error the engine raises on purpose."""


@dataclass
class JobInvalid(JobQueueError):
    errors: list[Problem]
    warnings: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{p.location or '/'}: {p.message}" for p in self.errors)


class NotFound(JobQueueError):
    pass


class Conflict(JobQueueError):
    pass


class IdempotencyMismatch(JobQueueError):
    pass


class TooLarge(JobQueueError):
    pass


class Unauthorized(JobQueueError):
    pass


class Forbidden(JobQueueError):
    pass


class WorkerFailed(JobQueueError):
    """A worker stopped because one of its helper tasks died."""


class Unavailable(JobQueueError):
    """The database (or the connection to it) failed in a way that may pass: retry later."""
