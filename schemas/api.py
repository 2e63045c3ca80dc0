"""The REST API's request envelopes and answers, as pydantic models for ``/openapi.json``.

The routes read their bodies by hand (``api/body.py``) and build their answers as plain dicts
(``engine/views.py``); these models describe those shapes for the OpenAPI document and are not
used on the request path. ``tests/integration/test_openapi.py`` checks real answers against them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel

from .jobs import JobSpec, SingleCallSpec

JobStatusName = Literal["queued", "running", "succeeded", "failed", "canceled"]
TaskStatusName = Literal[
    "pending", "queued", "running", "waiting", "succeeded", "failed", "canceled", "skipped"
]
AttemptStatusName = Literal[
    "running",
    "waiting",
    "succeeded",
    "failed",
    "lost",
    "interrupted",
    "canceled",
    "expired",
    "skipped",
    "callback_timeout",
]
Timestamp = Annotated[
    str,
    Field(
        description="ISO 8601 UTC with millisecond precision and `Z`",
        examples=["2026-11-29T11:33:44.075Z"],
    ),
]
JobId = Annotated[str, Field(description="`j_<ULID>`", examples=["j_01M8KHA6FB5RQFAGTW7ACNW8A3"])]
Schema = dict[str, JsonValue] | bool


# --- request bodies -----------------------------------------------------------------------


class JobDocument(RootModel[JobSpec | SingleCallSpec]):
    """A job: the DAG form (a `tasks` list) or the single-call form (`method` and `url` at the
    top level, one task named `main`). Sent as JSON or YAML."""


class BatchEntry(BaseModel):
    """A batch item that carries its own `Idempotency-Key`."""

    model_config = ConfigDict(extra="forbid")

    document: JobDocument
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)


class BatchRequest(BaseModel):
    """Up to 1,000 jobs; each item is a job document or a `BatchEntry`."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[BatchEntry | JobDocument] = Field(min_length=1, max_length=1000)


# --- errors -------------------------------------------------------------------------------


class Problem(BaseModel):
    """One finding of validation. Field-model findings (`code: invalid_field`) carry `code`,
    `location`, `message` and pydantic's `type` only."""

    code: str = Field(examples=["unknown_dependency"])
    message: str
    location: str = Field(
        description="JSON pointer into the submitted document", examples=["/tasks/0/depends_on/0"]
    )
    task: str | None = None
    edge: str | None = Field(
        default=None, description='`"upstream -> task"` for a problem about an edge'
    )
    expected: JsonValue = None
    actual: JsonValue = None
    line: int | None = Field(default=None, description="YAML bodies that do not parse only")
    column: int | None = Field(default=None, description="YAML bodies that do not parse only")
    type: str | None = Field(
        default=None, description="pydantic's error type (`invalid_field` only)"
    )


class ReportDetail(BaseModel):
    code: str = Field(description="`invalid_job` or `invalid_request`", examples=["invalid_job"])
    errors: list[Problem]
    warnings: list[Problem]


class ErrorDetail(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    location: str | None = Field(
        default=None, description="JSON pointer of the bad input, when known"
    )


class ErrorAnswer(BaseModel):
    """An error: its code and what went wrong."""

    detail: ErrorDetail


class InvalidReport(BaseModel):
    """422: every problem of the request at once, or an error with a message
    (`idempotency_key_reused`, a bad `cursor`)."""

    detail: ReportDetail | ErrorDetail


# --- jobs ---------------------------------------------------------------------------------


class SubmitAnswer(BaseModel):
    job_id: JobId
    status: JobStatusName = Field(description="`queued`, or the current status of a replayed job")
    warnings: list[Problem] = Field(
        default_factory=list, description="present only when validation warned"
    )


class ValidationAnswer(BaseModel):
    valid: bool
    warnings: list[Problem]


class BatchItemAnswer(BaseModel):
    index: int = Field(description="position of the item in `jobs`")
    status_code: int = Field(
        description="the status `POST /jobs` would have answered", examples=[201]
    )
    job_id: JobId | None = Field(default=None, description="accepted items only")
    status: JobStatusName | None = Field(default=None, description="accepted items only")
    existing: bool | None = Field(
        default=None, description="accepted items only: an idempotent replay"
    )
    warnings: list[Problem] = Field(
        default_factory=list, description="accepted items with warnings only"
    )
    error: ReportDetail | ErrorDetail | None = Field(default=None, description="refused items only")


class BatchAnswer(BaseModel):
    items: list[BatchItemAnswer]


class InstanceCounts(BaseModel):
    total: int
    succeeded: int
    failed: int
    running: int


class TaskDetail(BaseModel):
    name: str
    status: TaskStatusName
    attempt: int = Field(description="how many times the task was claimed")
    started_at: Timestamp | None
    finished_at: Timestamp | None
    max_attempts: int
    method: str
    url: str = Field(description="as submitted (a template, before rendering)")
    timeout_sec: float | None
    depends_on: list[str] = Field(
        description="every upstream task: explicit, then implied by templates"
    )
    skip_reason: Literal["when", "upstream"] | None = Field(
        default=None, description="skipped tasks only"
    )
    instances: InstanceCounts | None = Field(
        default=None, description="`for_each` tasks only, once expanded"
    )
    child_job_id: str | None = Field(
        default=None, description="sub-workflow tasks only: the child job it started last"
    )
    workflow: dict[str, JsonValue] | None = Field(
        default=None, description="sub-workflow tasks only: `{name, version}` it runs"
    )


class ParentRef(BaseModel):
    job_id: str
    task: str


class WorkflowRef(BaseModel):
    name: str
    version: int
    context: dict[str, Any] | None = Field(
        default=None, description="what its starter gave, such as a schedule's fire time"
    )


class JobDetail(BaseModel):
    job_id: JobId
    name: str | None
    status: JobStatusName
    attempt: int | None = Field(description="the only task's; `null` for a job of several tasks")
    max_attempts: int | None = Field(
        description="the only task's; `null` for a job of several tasks"
    )
    priority: int
    scheduled_at: Timestamp | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    method: str | None = Field(description="the only task's; `null` for a job of several tasks")
    url: str | None = Field(description="the only task's; `null` for a job of several tasks")
    timeout_sec: float | None = Field(
        description="the only task's effective timeout; `null` for several tasks"
    )
    tags: list[str]
    ttl_seconds: float | None
    warnings: list[Problem] = Field(description="the creation-time warnings")
    tasks: list[TaskDetail]
    workflow: WorkflowRef | None = Field(
        default=None, description="the definition the job was started from; `null` otherwise"
    )
    parent: ParentRef | None = Field(
        default=None, description="a sub-workflow's child job: the task that started it"
    )
    schedule: dict[str, str] | None = Field(
        default=None,
        description="only on a job a cron schedule created: `{id, name, fire_time}`",
    )


class JobListItem(BaseModel):
    job_id: JobId
    name: str | None
    status: JobStatusName
    priority: int
    tags: list[str]
    n_tasks: int
    scheduled_at: Timestamp | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None


class JobPage(BaseModel):
    items: list[JobListItem]
    next_cursor: str | None = Field(
        description="pass it back as `cursor` for the next page; `null` on the last"
    )


class TaskResult(BaseModel):
    status: TaskStatusName
    response_status: int | None
    response_headers: dict[str, str] | None = Field(
        description="lower-case names; secret values are `***`"
    )
    response_body: JsonValue = Field(
        description="parsed JSON, text, `null`, or base64 text for binary bodies"
    )
    response_truncated: bool | None
    error: dict[str, JsonValue] | None = Field(
        description="`type`, `message` and details of the last error"
    )
    duration_ms: int | None = Field(
        description="wall time of the HTTP exchange, whole milliseconds"
    )
    attempts: int = Field(description="how many times the task was claimed")


class JobResult(BaseModel):
    """The top-level `response_*`, `error` and `duration_ms` are the only sink task's; all
    `null` when the job has several sinks."""

    job_id: JobId
    status: JobStatusName
    response_status: int | None
    response_headers: dict[str, str] | None
    response_body: JsonValue
    response_truncated: bool | None
    error: dict[str, JsonValue] | None
    duration_ms: int | None = Field(description="whole milliseconds")
    tasks: dict[str, TaskResult]


class Attempt(BaseModel):
    attempt: int
    status: AttemptStatusName
    worker: str | None = Field(description="`host:pid:suffix` of the process that made the attempt")
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None = Field(description="whole milliseconds")
    response_status: int | None
    error: dict[str, JsonValue] | None


class AttemptList(BaseModel):
    job_id: JobId
    task: str
    attempts: list[Attempt] = Field(description="oldest first")


class Instance(BaseModel):
    index: int = Field(description="the item's position in the list")
    status: TaskStatusName
    attempt: int
    output: JsonValue = Field(description="the response body of its call")
    error: dict[str, JsonValue] | None
    child_job_id: str | None = Field(
        default=None, description="an instance that runs a sub-workflow: its child job"
    )


class InstancePage(BaseModel):
    job_id: JobId
    task: str
    items: list[Instance] = Field(description="in item order")
    next_start: int | None = Field(
        description="pass it back as `start` for the next page; `null` on the last"
    )


class InstanceAttemptList(BaseModel):
    job_id: JobId
    task: str
    index: int
    attempts: list[Attempt] = Field(description="oldest first")


class GraphNode(BaseModel):
    name: str
    status: TaskStatusName


class GraphEdge(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str


class Graph(BaseModel):
    job_id: JobId
    status: JobStatusName
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class JobState(BaseModel):
    job_id: JobId
    status: JobStatusName


# --- interface masters and health ---------------------------------------------------------


class InterfaceMaster(BaseModel):
    id: str = Field(description="`im_<ULID>`")
    name: str
    description: str | None
    input_schema: Schema | None
    output_schema: Schema | None
    version: int = Field(description="1 at creation, + 1 on every update")
    created_at: Timestamp
    updated_at: Timestamp


class InterfaceMasterList(BaseModel):
    items: list[InterfaceMaster] = Field(description="sorted by name")


class BrokerHealth(BaseModel):
    url: str = Field(description="the broker's URL, without its password")
    state: Literal["connected", "down"] = Field(
        description="`down`: signals wait for the broker; processes poll the database meanwhile"
    )


class Health(BaseModel):
    status: Literal["ok", "unhealthy"]
    database: str = Field(description="`ok`, or the error of the `SELECT 1` that failed")
    workers: int = Field(description="workers running in this process (the embedded worker)")
    failed_workers: list[str] = Field(
        description="workers of this process that stopped on their own, with the reason"
    )
    broker: BrokerHealth | None = Field(
        default=None, description="the broker between processes; absent when none is set"
    )
