"""Rows -> the documents the API returns. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from engine.dag import sinks
from engine.masking import mask_headers
from engine.store import StoredTaskSpec


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_summary(row: Row[Any], *, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": row.name,
        "status": row.status,
        "attempt": row.attempt,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
    }
    if full:
        spec = StoredTaskSpec.from_json(row.spec)
        data |= {
            "max_attempts": row.max_attempts,
            "method": spec.method,
            "url": spec.url,
            "timeout_sec": spec.timeout_sec,
            "depends_on": list(row.upstream or ()),
        }
        if row.skip_reason:
            data["skip_reason"] = row.skip_reason
        if spec.workflow is not None:
            data["workflow"] = {k: spec.workflow.get(k) for k in ("name", "version")}
    return data


def job_detail(
    job: Row[Any],
    task_rows: Sequence[Row[Any]],
    default_timeout: float,
    running_instances: dict[int, int] | None = None,
) -> dict[str, Any]:
    """``running_instances``: how many instances of each ``for_each`` task run, by task id."""
    only = task_rows[0] if len(task_rows) == 1 else None
    spec = StoredTaskSpec.from_json(only.spec) if only is not None else None
    made_by = (job.context or {}).get("schedule")
    return {
        **({"schedule": made_by} if made_by is not None else {}),
        "job_id": job.id,
        "name": job.name,
        "status": job.status,
        "attempt": only.attempt if only is not None else None,
        "max_attempts": only.max_attempts if only is not None else None,
        "priority": job.priority,
        "scheduled_at": iso(job.scheduled_at),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "method": spec.method if spec is not None else None,
        "url": spec.url if spec is not None else None,
        "timeout_sec": (spec.timeout_sec or default_timeout) if spec is not None else None,
        "tags": list(job.tags or []),
        "ttl_seconds": job.ttl_seconds,
        "warnings": job.warnings or [],
        "tasks": [_with_instances(t, running_instances or {}) for t in task_rows],
        "workflow": workflow_ref(job),
        "parent": (
            {"job_id": job.parent_job_id, "task": job.parent_task} if job.parent_job_id else None
        ),
    }


def _with_instances(row: Row[Any], running: dict[int, int]) -> dict[str, Any]:
    data = task_summary(row, full=True)
    if row.child_job_id is not None:
        data["child_job_id"] = row.child_job_id
    if row.items_total is not None:
        data["instances"] = {
            "total": row.items_total,
            "succeeded": row.items_succeeded or 0,
            "failed": row.items_failed or 0,
            "running": running.get(row.id, 0),
        }
    return data


def workflow_ref(job: Row[Any]) -> dict[str, Any] | None:
    """``{"name", "version"}`` (and ``context`` when its starter gave one) of the definition a
    job was started from; ``None`` for a job submitted as a document."""
    if job.workflow_name is None:
        return None
    ref: dict[str, Any] = {"name": job.workflow_name, "version": job.workflow_version}
    if job.workflow_context:
        ref["context"] = job.workflow_context
    return ref


def workflow_summary(row: Row[Any]) -> dict[str, Any]:
    return {
        "name": row.name,
        "version": row.version,
        "description": row.description,
        "created_at": iso(row.created_at),
    }


def workflow_view(row: Row[Any], versions: Sequence[Row[Any]]) -> dict[str, Any]:
    """One version of a definition, with every version's number and time."""
    return {
        **workflow_summary(row),
        "params_schema": row.params_schema,
        "document": row.document,
        "versions": [{"version": v.version, "created_at": iso(v.created_at)} for v in versions],
    }


def job_list_item(job: Row[Any]) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "name": job.name,
        "status": job.status,
        "priority": job.priority,
        "tags": list(job.tags or []),
        "n_tasks": job.n_tasks,
        "scheduled_at": iso(job.scheduled_at),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
    }


def whole_ms(duration_ms: float | None) -> int | None:
    """Durations go on the wire as whole milliseconds (stored with sub-millisecond precision)."""
    return None if duration_ms is None else round(duration_ms)


def task_result(row: Row[Any]) -> dict[str, Any]:
    return {
        "status": row.status,
        "response_status": row.response_status,
        "response_headers": mask_headers(row.response_headers),
        "response_body": row.response_body,
        "response_truncated": bool(row.response_truncated)
        if row.response_truncated is not None
        else None,
        "error": row.error,
        "duration_ms": whole_ms(row.duration_ms),
        "attempts": int(row.attempt),
    }


def job_result(job: Row[Any], task_rows: Sequence[Row[Any]]) -> dict[str, Any]:
    per_task = {t.name: task_result(t) for t in task_rows}
    ends = sinks(per_task, {t.name: t.upstream or () for t in task_rows})
    top: dict[str, Any] = {
        "response_status": None,
        "response_headers": None,
        "response_body": None,
        "response_truncated": None,
        "error": None,
        "duration_ms": None,
    }
    if len(ends) == 1:
        chosen = per_task[ends[0]]
        top = {k: chosen[k] for k in top}
    return {"job_id": job.id, "status": job.status, **top, "tasks": per_task}


def attempt_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "attempt": row.attempt,
        "status": row.status,
        "worker": row.worker,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "duration_ms": whole_ms(row.duration_ms),
        "response_status": row.response_status,
        "error": row.error,
    }


def instance_view(row: Row[Any]) -> dict[str, Any]:
    data = {
        "index": row.item_index,
        "status": row.status,
        "attempt": row.attempt,
        "output": row.response_body,
        "error": row.error,
    }
    if row.child_job_id is not None:
        data["child_job_id"] = row.child_job_id
    return data


def graph_view(task_rows: Sequence[Row[Any]]) -> dict[str, Any]:
    return {
        "nodes": [{"name": t.name, "status": t.status} for t in task_rows],
        "edges": [{"from": u, "to": t.name} for t in task_rows for u in (t.upstream or ())],
    }


def master_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "input_schema": row.input_schema,
        "output_schema": row.output_schema,
        "version": row.version,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def task_detail(
    row: Row[Any], spec_json: dict[str, Any], secret_headers: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """One task: its request as submitted (templates unrendered, secret header values masked),
    its state, and its stored response. ``spec_json``: the row's spec, decrypted."""
    spec = StoredTaskSpec.from_json(spec_json)
    return {
        **task_summary(row, full=True),
        "request": {
            "method": spec.method,
            "url": spec.url,
            "headers": mask_headers(spec.headers, secret_headers),
            "params": spec.params,
            "body": spec.body,
            "timeout_sec": spec.timeout_sec,
        },
        "when": spec.when,
        "interface": spec.interface,
        "error": row.error,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "queued" else None,
        "result": task_result(row),
    }
