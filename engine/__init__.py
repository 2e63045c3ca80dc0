"""JobQueue's engine: everything below the REST API and the CLI. It never imports FastAPI.

``api/`` and the CLI import only the names listed in ``__all__``.
"""

from .config import EngineConfig
from .errors import (
    Conflict,
    IdempotencyMismatch,
    JobInvalid,
    JobQueueError,
    NotFound,
    Problem,
    TooLarge,
)
from .loader import WorkflowFileError
from .service import BatchItem, Engine, SubmitResult, WorkerFailed
from .states import JobStatus, TaskStatus
from .store.reads import JobFilter

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
