"""Answers of the read routes the dashboard uses besides the job routes: one task in full, and
the job figures. Pydantic models for ``/openapi.json``, like :mod:`schemas.api`."""

from __future__ import annotations

from pydantic import BaseModel, Field, JsonValue

from .api import TaskDetail, TaskResult, Timestamp


class TaskRequest(BaseModel):
    method: str
    url: str
    headers: dict[str, JsonValue] | None = Field(description="secret values are `***`")
    params: dict[str, JsonValue] | None
    body: JsonValue
    timeout_sec: float | None


class TaskView(TaskDetail):
    request: TaskRequest = Field(
        description="as submitted: templates are shown unrendered, secret header values masked"
    )
    when: str | None
    interface: str | None
    error: dict[str, JsonValue] | None = Field(description="the last error, if any")
    next_attempt_at: Timestamp | None = Field(description="queued tasks: when the next try is due")
    result: TaskResult


class MinuteCount(BaseModel):
    minute: Timestamp = Field(description="the start of the minute")
    succeeded: int
    failed: int
    canceled: int


class JobStats(BaseModel):
    counts: dict[str, int] = Field(description="jobs per status (jobs past their TTL excluded)")
    total: int
    throughput: list[MinuteCount] = Field(
        description="jobs that ended in each of the last minutes, oldest first"
    )
