"""JobQueue's engine: everything below the REST API and the CLI. It never imports FastAPI.

``api/`` imports only the names listed in ``__all__``. They load on first use (PEP 562), so that
importing a pure subpackage (``engine.dag``, ``engine.contracts``, ``engine.templates``) does
not drag in the store, SQLAlchemy or the HTTP clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.config import DEFAULT_DB_URL, EngineConfig, JobLimits
    from engine.dag import to_mermaid
    from engine.errors import (
        Conflict,
        Forbidden,
        IdempotencyMismatch,
        JobInvalid,
        JobQueueError,
        NotFound,
        Problem,
        TooLarge,
        Unauthorized,
        Unavailable,
        WorkerFailed,
    )
    from engine.http.host_limits import parse_host_limits
    from engine.jobs.loader import (
        LoadedDocument,
        WorkflowFileError,
        attach_marks,
        load_workflow_file,
        load_yaml_bytes,
        parse_yaml_body,
    )
    from engine.jsonpointer import join_pointer
    from engine.masking import SecretLogFilter, mask_view
    from engine.schedules.files import load_schedule_file, place_in_schedule_file
    from engine.security.access import Actor
    from engine.security.keys import ANONYMOUS, Principal, parse_key_entries
    from engine.service import BatchItem, Engine, SubmitResult
    from engine.signals import check_broker_url
    from engine.states import JobStatus, TaskStatus
    from engine.store.audit import AuditFilter
    from engine.store.reads import JobFilter

#: public name -> the module that defines it
_EXPORTS = {
    "ANONYMOUS": "engine.security.keys",
    "Actor": "engine.security.access",
    "AuditFilter": "engine.store.audit",
    "JobLimits": "engine.config",
    "Principal": "engine.security.keys",
    "parse_key_entries": "engine.security.keys",
    "BatchItem": "engine.service",
    "Conflict": "engine.errors",
    "DEFAULT_DB_URL": "engine.config",
    "Engine": "engine.service",
    "Forbidden": "engine.errors",
    "Unauthorized": "engine.errors",
    "EngineConfig": "engine.config",
    "IdempotencyMismatch": "engine.errors",
    "JobFilter": "engine.store.reads",
    "JobInvalid": "engine.errors",
    "JobQueueError": "engine.errors",
    "JobStatus": "engine.states",
    "LoadedDocument": "engine.jobs.loader",
    "NotFound": "engine.errors",
    "Problem": "engine.errors",
    "SecretLogFilter": "engine.masking",
    "SubmitResult": "engine.service",
    "TaskStatus": "engine.states",
    "TooLarge": "engine.errors",
    "Unavailable": "engine.errors",
    "WorkerFailed": "engine.errors",
    "WorkflowFileError": "engine.jobs.loader",
    "attach_marks": "engine.jobs.loader",
    "check_broker_url": "engine.signals",
    "join_pointer": "engine.jsonpointer",
    "load_schedule_file": "engine.schedules.files",
    "load_workflow_file": "engine.jobs.loader",
    "load_yaml_bytes": "engine.jobs.loader",
    "mask_view": "engine.masking",
    "parse_host_limits": "engine.http.host_limits",
    "parse_yaml_body": "engine.jobs.loader",
    "place_in_schedule_file": "engine.schedules.files",
    "to_mermaid": "engine.dag",
}

__all__ = [
    "ANONYMOUS",
    "DEFAULT_DB_URL",
    "Actor",
    "AuditFilter",
    "BatchItem",
    "Conflict",
    "Engine",
    "EngineConfig",
    "Forbidden",
    "IdempotencyMismatch",
    "JobFilter",
    "JobInvalid",
    "JobLimits",
    "JobQueueError",
    "JobStatus",
    "LoadedDocument",
    "NotFound",
    "Principal",
    "Problem",
    "SecretLogFilter",
    "SubmitResult",
    "TaskStatus",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "WorkerFailed",
    "WorkflowFileError",
    "attach_marks",
    "check_broker_url",
    "join_pointer",
    "load_schedule_file",
    "load_workflow_file",
    "load_yaml_bytes",
    "mask_view",
    "parse_host_limits",
    "parse_key_entries",
    "parse_yaml_body",
    "place_in_schedule_file",
    "to_mermaid",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
