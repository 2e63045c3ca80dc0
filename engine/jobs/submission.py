"""Turn a validated job into the rows the store inserts (pure)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from ulid import ULID

from engine.jobs.validation import ValidatedJob
from engine.states import JobStatus, TaskStatus
from engine.store.records import StoredTaskSpec
from engine.store.submit import NewJob
from engine.templates import has_template
from schemas.jobs import JobSpec, TaskSpec


def new_job_id() -> str:
    return f"j_{ULID()}"


def request_hash(document: Any) -> str:
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _retry_value(task: TaskSpec, job: JobSpec, field: str) -> Any:
    value = getattr(task, field)
    return getattr(job, field) if value is None else value


def _task_spec(
    task: TaskSpec, job: JobSpec, validated: ValidatedJob, position: int
) -> StoredTaskSpec:
    schemas = validated.schemas.get(task.name)
    strategy = _retry_value(task, job, "backoff_strategy")
    return StoredTaskSpec(
        position=position,
        solo=len(job.tasks) == 1,
        method=task.method,
        url=task.url,
        headers=task.headers,
        params=task.params,
        body=task.body,
        timeout_sec=task.timeout_sec,
        follow_redirects=task.follow_redirects,
        secret_headers=sorted({h.lower() for h in task.secret_headers}) or None,
        when=task.when,
        interface=task.interface,
        backoff_strategy=strategy.value if strategy is not None else None,
        backoff_seconds=_retry_value(task, job, "backoff_seconds"),
        max_backoff_seconds=_retry_value(task, job, "max_backoff_seconds"),
        retry_on_status=_retry_value(task, job, "retry_on_status"),
        input_schema=schemas.input_schema if schemas else None,
        output_schema=schemas.output_schema if schemas else None,
        for_each=task.for_each,
        max_parallel=task.max_parallel,
        workflow=task.workflow.model_dump() if task.workflow else None,
        callback_timeout_sec=task.callback.timeout_sec if task.callback else None,
    )


def build_rows(
    validated: ValidatedJob,
    *,
    single_call: bool,
    owner: str = "",
    idempotency_key: str | None = None,
    document_hash: str | None = None,
    workflow: dict[str, Any] | None = None,
    parent: tuple[str, str, int] | None = None,
    context: dict[str, Any] | None = None,
) -> NewJob:
    """The rows of a validated job; ``context``: extra template roots (``schedule``);
    ``workflow``: ``{"name", "version", "context"}`` of the definition the job runs;
    ``parent``: (job id, task, depth) of the sub-workflow task a child job runs for."""
    job = validated.spec
    now = time.time()
    job_id = new_job_id()
    start = max(now, job.scheduled_at.timestamp()) if job.scheduled_at else now
    task_rows: list[dict[str, Any]] = []
    for position, task in enumerate(job.tasks):
        upstream = list(validated.upstream.get(task.name, ()))
        root = not upstream
        ttl = task.ttl_seconds
        task_rows.append(
            {
                "job_id": job_id,
                "name": task.name,
                "position": position,
                "status": (TaskStatus.QUEUED if root else TaskStatus.PENDING).value,
                "priority": job.priority,
                "spec": _task_spec(task, job, validated, position).to_json(),
                "upstream": upstream,
                "trigger_rule": task.trigger_rule.value,
                "templated": task.callback is not None
                or has_template(
                    [
                        task.url,
                        task.headers,
                        task.params,
                        task.body,
                        task.for_each,
                        task.workflow.params if task.workflow else None,
                    ]
                ),
                "attempt": 0,
                "tries": 0,
                "max_attempts": _retry_value(task, job, "max_attempts") or 1,
                "rescues": 0,
                "ttl_seconds": ttl,
                "next_attempt_at": start if root else None,
                "ready_at": start if root else None,
                "expires_at": start + ttl if root and ttl is not None else None,
                # set by direct dispatch; every row carries every key (one executemany)
                "lease_owner": None,
                "lease_expires_at": None,
                "started_at": None,
            }
        )
    interfaces = sorted(
        {t.interface for t in job.tasks if t.interface and t.interface not in job.interfaces}
    )
    return NewJob(
        job={
            "id": job_id,
            "name": job.name,
            "status": JobStatus.QUEUED.value,
            "priority": job.priority,
            "owner": owner,
            "params": job.params,
            "single_call": single_call,
            "n_tasks": len(job.tasks),
            "scheduled_at": job.scheduled_at.timestamp() if job.scheduled_at else None,
            "ttl_seconds": job.ttl_seconds,
            "created_at": now,
            "started_at": None,
            "idempotency_key": idempotency_key,
            "request_hash": document_hash,
            "warnings": [w.to_dict() for w in validated.warnings],
            "tags": job.tags,
            # every row carries every key (the batch inserts with one executemany)
            "workflow_name": workflow["name"] if workflow else None,
            "workflow_version": workflow["version"] if workflow else None,
            "workflow_context": workflow.get("context") if workflow else None,
            "parent_job_id": parent[0] if parent else None,
            "parent_task": parent[1] if parent else None,
            "depth": parent[2] if parent else 0,
            "context": context,
            "on_complete": job.on_complete.model_dump() if job.on_complete else None,
        },
        tasks=task_rows,
        tags=sorted(set(job.tags)),
        interfaces=interfaces,
    )
