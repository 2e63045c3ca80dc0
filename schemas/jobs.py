"""The job document: what `POST /api/v1/jobs` takes and what a YAML workflow file holds.

Two forms arrive on the wire. The single-call form (`method` + `url` at the top level) is a
one-task job whose task is named ``main``; the DAG form has a ``tasks`` list. Both normalise to
:class:`JobSpec` through :func:`parse_job_document`, so everything past the wire sees one shape.
Unknown fields are rejected (``extra="forbid"``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

TASK_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
DEFAULT_RETRY_ON_STATUS: tuple[int, ...] = (408, 429, 500, 502, 503, 504)
MAX_TASKS_PER_JOB = 20_000

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
Seconds = Annotated[float, Field(ge=0, le=10 * 365 * 86400, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=86400, allow_inf_nan=False)]


class BackoffStrategy(StrEnum):
    FIXED = "fixed"  #: every retry waits ``backoff_seconds``
    LINEAR = "linear"  #: retry n waits ``backoff_seconds * n``
    EXPONENTIAL = "exponential"  #: retry n waits ``backoff_seconds * 2**(n-1)``


class TriggerRule(StrEnum):
    """When a task runs, given how its upstream tasks ended (Airflow's names)."""

    ALL_SUCCESS = "all_success"  #: every upstream succeeded or was skipped by its ``when``
    ALL_DONE = "all_done"  #: every upstream ended, whatever the outcome
    ONE_SUCCESS = "one_success"  #: at least one upstream succeeded (once all have ended)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InlineInterface(_Strict):
    """An InterfaceMaster defined inside a workflow document (``interfaces:``)."""

    description: str | None = None
    input_schema: dict[str, JsonValue] | None = None
    output_schema: dict[str, JsonValue] | None = None


#: a header name: an RFC 9110 token, matched whole with ``fullmatch`` (the one definition: the
#: engine's HTTP codec checks with it too)
HTTP_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SCHEME = re.compile(r"^https?://[^/?#\s]", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_url(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("url must not contain control characters (NUL, CR, LF, ...)")
    value = value.strip()
    if value and "{{" not in value and "{%" not in value and not _SCHEME.match(value):
        raise ValueError("url must be an absolute http:// or https:// URL")
    return value


def check_headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if not HTTP_TOKEN.fullmatch(name):
            raise ValueError(f"header name {name!r} is not a valid HTTP token")
        if _CONTROL.sub("", text.replace("\t", "")) != text.replace("\t", ""):
            raise ValueError(f"header {name!r} contains control characters (NUL, CR, LF, ...)")
    return value


class _Request(BaseModel):
    """The checks shared by every model that describes one HTTP request."""

    @field_validator("url", check_fields=False)
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value)

    @field_validator("method", mode="before", check_fields=False)
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers", check_fields=False)
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)


class RetryFields(_Strict):
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    backoff_strategy: BackoffStrategy | None = None
    backoff_seconds: Seconds | None = None
    max_backoff_seconds: Seconds | None = None
    retry_on_status: list[Annotated[int, Field(ge=100, le=599)]] | None = None


class CallbackSpec(_Strict):
    """The task waits, after a 2xx answer, for ``POST /api/v1/callbacks/{token}``."""

    #: from the moment the request is sent; then the task fails with ``callback_timeout``
    timeout_sec: Annotated[float, Field(gt=0, le=30 * 86400, allow_inf_nan=False)]


JobEndStatus = Literal["succeeded", "failed", "canceled"]


def _every_end() -> list[JobEndStatus]:
    return ["succeeded", "failed", "canceled"]


class OnCompleteSpec(_Strict):
    """A webhook POSTed when the job ends with one of ``events`` (its final status)."""

    url: str = Field(min_length=1, max_length=8192)
    headers: dict[str, str] = Field(default_factory=dict)
    events: list[JobEndStatus] = Field(default_factory=_every_end, min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = check_url(value)
        if not _SCHEME.match(value):
            raise ValueError("on_complete.url must be an absolute http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        return check_headers(value)


class CallFields(RetryFields, _Request):
    """One HTTP call: the request, its interface contract and its retry policy. A DAG task and
    the single-call form both describe one call with these fields."""

    method: HttpMethod = "GET"
    url: str = Field(min_length=1, max_length=8192)
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    body: JsonValue = None
    timeout_sec: PositiveSeconds | None = None
    interface: str | None = None
    input_schema: dict[str, JsonValue] | None = None
    output_schema: dict[str, JsonValue] | None = None
    follow_redirects: bool = False
    #: more header names whose values are secret for this task: masked wherever the API or the
    #: logs show them, encrypted at rest with a secret key, dropped on a cross-origin redirect
    secret_headers: list[Annotated[str, Field(pattern=f"^{HTTP_TOKEN.pattern}$")]] = Field(
        default_factory=list, max_length=100
    )
    callback: CallbackSpec | None = None


class JobFields(_Strict):
    """What a job is besides its tasks: a name, when and how urgently it runs, how long it is
    kept. The DAG form and the single-call form share these fields."""

    name: str | None = Field(default=None, max_length=256)
    priority: int = Field(default=0, ge=-1000, le=1000)
    tags: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list)
    scheduled_at: datetime | None = None
    ttl_seconds: Seconds | None = None
    on_complete: OnCompleteSpec | None = None

    @field_validator("scheduled_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


#: the fields of one call, which the single-call form hands to its task
CALL_FIELDS = frozenset(CallFields.model_fields)
#: the job-level fields, which the single-call form keeps for its job
JOB_FIELDS = frozenset(JobFields.model_fields)


class SubWorkflow(_Strict):
    """A task that runs a stored workflow definition as a child job instead of one call."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
    #: the definition's version (default: its latest when the job is created)
    version: int | None = Field(default=None, ge=1)
    #: the child's params: templates, rendered when the task starts
    params: dict[str, JsonValue] = Field(default_factory=dict)


class TaskSpec(CallFields):
    name: str = Field(pattern=TASK_NAME_PATTERN, max_length=128)
    #: may be left out (it is then ``""``) by a task that names a ``workflow``
    url: str = Field(max_length=8192)
    workflow: SubWorkflow | None = None
    ttl_seconds: Seconds | None = None
    depends_on: list[str] = Field(default_factory=list)
    when: str | None = Field(default=None, max_length=4096)
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    #: one template that renders a list: the task runs once per item (``item``, ``item_index``)
    for_each: str | None = Field(default=None, max_length=4096)
    #: at most this many instances of a ``for_each`` task run at once
    max_parallel: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="before")
    @classmethod
    def _no_url_for_a_workflow(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("workflow") is not None and "url" not in data:
            return {**data, "url": ""}
        return data

    @model_validator(mode="after")
    def _call_or_workflow(self) -> TaskSpec:
        if self.workflow is None and not self.url:
            raise ValueError("a task needs a url (or a workflow to run instead)")
        if self.workflow is not None and self.url:
            raise ValueError("a task has either a url or a workflow, not both")
        return self


class JobSpec(JobFields, RetryFields):
    """The normalised job: always a list of tasks (a single call is the task ``main``)."""

    validate_interfaces: bool = True
    params: dict[str, JsonValue] = Field(default_factory=dict)
    interfaces: dict[str, InlineInterface] = Field(default_factory=dict)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS_PER_JOB)


class SingleCallSpec(JobFields, CallFields):
    """The seed's single-call body; becomes a one-task :class:`JobSpec`."""

    #: the task's ``ttl_seconds`` (``ttl_seconds`` here is the job's, as in the DAG form)
    task_ttl_seconds: Seconds | None = None

    def to_job(self) -> JobSpec:
        task = TaskSpec(name="main", ttl_seconds=self.task_ttl_seconds, **self._values(CALL_FIELDS))
        return JobSpec(**self._values(JOB_FIELDS), tasks=[task])

    def _values(self, names: frozenset[str]) -> dict[str, Any]:
        # the validated values themselves: model_dump() would copy the body, and a single call
        # is the hot path of submission
        return {name: getattr(self, name) for name in names}


def parse_job_document(document: Any) -> JobSpec:
    """Validate a decoded JSON/YAML document and return the normalised :class:`JobSpec`.

    Raises :class:`pydantic.ValidationError` whose ``loc`` points into the submitted document.
    """
    if isinstance(document, dict) and "tasks" in document:
        return JobSpec.model_validate(document)
    if isinstance(document, dict):
        return SingleCallSpec.model_validate(document).to_job()
    return JobSpec.model_validate(document)
