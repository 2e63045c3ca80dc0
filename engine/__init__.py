"""JobQueue's engine: everything below the REST API and the CLI. It never imports FastAPI.

``api/`` and the CLI import only the names listed in ``__all__``.
"""

from engine.config import EngineConfig
from engine.errors import (
    Conflict,
    IdempotencyMismatch,
    JobInvalid,
    JobQueueError,
    NotFound,
    Problem,
    TooLarge,
)
from engine.jobs.loader import WorkflowFileError
from engine.service import BatchItem, Engine, SubmitResult, WorkerFailed
from engine.states import JobStatus, TaskStatus
from engine.store.reads import JobFilter

__all__ = [
    "BatchItem",
    "Conflict",
    "Engine",
    "EngineConfig",
    "IdempotencyMismatch",
    "JobFilter",
    "JobInvalid",
    "JobQueueError",
    "JobStatus",
    "NotFound",
    "Problem",
    "SubmitResult",
    "TaskStatus",
    "TooLarge",
    "WorkerFailed",
    "WorkflowFileError",
]
