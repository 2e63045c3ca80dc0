"""The job document models (schemas.jobs): the single-call form is one call plus job fields."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.jobs import CALL_FIELDS, JOB_FIELDS, SingleCallSpec, TaskSpec, parse_job_document


def test_single_call_fields_are_the_call_and_the_job_fields() -> None:
    assert set(SingleCallSpec.model_fields) == CALL_FIELDS | JOB_FIELDS | {"task_ttl_seconds"}
    assert CALL_FIELDS <= set(TaskSpec.model_fields)
    assert not CALL_FIELDS & JOB_FIELDS


def test_single_call_becomes_a_one_task_job_with_every_value() -> None:
    spec = parse_job_document(
        {
            "name": "ping",
            "priority": 7,
            "tags": ["t"],
            "scheduled_at": "2030-01-01T00:00:00",
            "ttl_seconds": 60,
            "task_ttl_seconds": 5,
            "method": "post",
            "url": "http://api.local/x",
            "headers": {"X-A": "1"},
            "params": {"q": 1},
            "body": {"a": [1]},
            "timeout_sec": 3,
            "interface": "iface",
            "input_schema": {"type": "object"},
            "output_schema": {"type": "object"},
            "follow_redirects": True,
            "secret_headers": ["X-Signature"],
            "max_attempts": 3,
            "backoff_strategy": "linear",
            "backoff_seconds": 2,
            "max_backoff_seconds": 9,
            "retry_on_status": [503],
            "callback": {"timeout_sec": 60},
            "on_complete": {"url": "http://hooks.local/done", "events": ["failed"]},
        }
    )
    assert spec.on_complete is not None
    assert (spec.on_complete.url, spec.on_complete.events) == (
        "http://hooks.local/done",
        ["failed"],
    )
    assert (spec.name, spec.priority, spec.tags, spec.ttl_seconds) == ("ping", 7, ["t"], 60)
    assert spec.scheduled_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert spec.max_attempts is None  # the call's retry policy is the task's, not the job's
    (task,) = spec.tasks
    assert task.name == "main"
    assert task.ttl_seconds == 5
    assert task.method == "POST"
    assert task.model_dump(include=set(CALL_FIELDS)) == {
        "method": "POST",
        "url": "http://api.local/x",
        "headers": {"X-A": "1"},
        "params": {"q": 1},
        "body": {"a": [1]},
        "timeout_sec": 3.0,
        "interface": "iface",
        "input_schema": {"type": "object"},
        "output_schema": {"type": "object"},
        "follow_redirects": True,
        "secret_headers": ["X-Signature"],
        "callback": {"timeout_sec": 60.0},
        "max_attempts": 3,
        "backoff_strategy": "linear",
        "backoff_seconds": 2.0,
        "max_backoff_seconds": 9.0,
        "retry_on_status": [503],
    }
