"""Workflow definitions on the wire: the document ``PUT /workflows/{name}`` stores, and the body
of ``POST /workflows/{name}/runs``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from schemas.jobs import JobSpec

#: a definition's name: it is a URL path segment and a YAML file's ``name``
WORKFLOW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
#: the fields a definition adds to a job document
DEFINITION_FIELDS = ("description", "params_schema")


class WorkflowDefinition(JobSpec):
    """A DAG job document (section "DAG" of a job) plus what describes it as a definition.

    Its ``params`` are defaults: a run's params are laid over them.
    """

    description: str | None = Field(default=None, max_length=4096)
    params_schema: dict[str, JsonValue] | bool | None = None


def split_definition(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the job document, the definition's own fields) of a definition document."""
    job = {k: v for k, v in document.items() if k not in DEFINITION_FIELDS}
    own = {k: document.get(k) for k in DEFINITION_FIELDS}
    return job, own


class WorkflowRun(BaseModel):
    """``POST /workflows/{name}/runs``: start a job of a definition."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, JsonValue] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1)
    tags: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list)
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    scheduled_at: datetime | None = None

    @field_validator("scheduled_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class WorkflowVersion(BaseModel):
    version: int
    created_at: str


class WorkflowSummary(BaseModel):
    name: str
    version: int = Field(description="the latest version")
    description: str | None
    created_at: str = Field(description="when this version was stored")


class WorkflowList(BaseModel):
    items: list[WorkflowSummary]


class WorkflowDetail(WorkflowSummary):
    params_schema: dict[str, Any] | bool | None
    document: dict[str, Any] = Field(description="the job document each run starts from")
    versions: list[WorkflowVersion]


class WorkflowRefAnswer(BaseModel):
    name: str
    version: int


class RunAnswer(BaseModel):
    job_id: str
    status: str
    workflow: WorkflowRefAnswer
    warnings: list[dict[str, Any]] = Field(default_factory=list)
