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


#: a header name: an RFC 9110 token (the one definition: the engine's HTTP codec checks with it)
HTTP_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SCHEME = re.compile(r"^https?://[^/?#\s]", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_url(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("url must not contain control characters (NUL, CR, LF, ...)")
    value = value.strip()
    if "{{" not in value and "{%" not in value and not _SCHEME.match(value):
        raise ValueError("url must be an absolute http:// or https:// URL")
    return value


def check_headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if not HTTP_TOKEN.match(name):
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


class TaskSpec(RetryFields, _Request):
    name: str = Field(pattern=TASK_NAME_PATTERN, max_length=128)
    method: HttpMethod = "GET"
    url: str = Field(min_length=1, max_length=8192)
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    body: JsonValue = None
    timeout_sec: PositiveSeconds | None = None
    ttl_seconds: Seconds | None = None
    depends_on: list[str] = Field(default_factory=list)
    interface: str | None = None
    input_schema: dict[str, JsonValue] | None = None
    output_schema: dict[str, JsonValue] | None = None
    when: str | None = Field(default=None, max_length=4096)
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    follow_redirects: bool = False


class JobSpec(RetryFields):
    """The normalised job: always a list of tasks (a single call is the task ``main``)."""

    name: str | None = Field(default=None, max_length=256)
    priority: int = Field(default=0, ge=-1000, le=1000)
    tags: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list)
    scheduled_at: datetime | None = None
    ttl_seconds: Seconds | None = None
    validate_interfaces: bool = True
    params: dict[str, JsonValue] = Field(default_factory=dict)
    interfaces: dict[str, InlineInterface] = Field(default_factory=dict)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS_PER_JOB)

    @field_validator("scheduled_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class SingleCallSpec(RetryFields, _Request):
    """The seed's single-call body; becomes a one-task :class:`JobSpec`."""

    name: str | None = Field(default=None, max_length=256)
    method: HttpMethod = "GET"
    url: str = Field(min_length=1, max_length=8192)
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    body: JsonValue = None
    timeout_sec: PositiveSeconds | None = None
    priority: int = Field(default=0, ge=-1000, le=1000)
    scheduled_at: datetime | None = None
    ttl_seconds: Seconds | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(default_factory=list)
    task_ttl_seconds: Seconds | None = None
    interface: str | None = None
    input_schema: dict[str, JsonValue] | None = None
    output_schema: dict[str, JsonValue] | None = None
    follow_redirects: bool = False

    def to_job(self) -> JobSpec:
        task = TaskSpec(
            name="main",
            method=self.method,
            url=self.url,
            headers=self.headers,
            params=self.params,
            body=self.body,
            timeout_sec=self.timeout_sec,
            ttl_seconds=self.task_ttl_seconds,
            interface=self.interface,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            follow_redirects=self.follow_redirects,
            max_attempts=self.max_attempts,
            backoff_strategy=self.backoff_strategy,
            backoff_seconds=self.backoff_seconds,
            max_backoff_seconds=self.max_backoff_seconds,
            retry_on_status=self.retry_on_status,
        )
        return JobSpec(
            name=self.name,
            priority=self.priority,
            tags=self.tags,
            scheduled_at=self.scheduled_at,
            ttl_seconds=self.ttl_seconds,
            tasks=[task],
        )


def parse_job_document(document: Any) -> JobSpec:
    """Validate a decoded JSON/YAML document and return the normalised :class:`JobSpec`.

    Raises :class:`pydantic.ValidationError` whose ``loc`` points into the submitted document.
    """
    if isinstance(document, dict) and "tasks" in document:
        return JobSpec.model_validate(document)
    if isinstance(document, dict):
        return SingleCallSpec.model_validate(document).to_job()
    return JobSpec.model_validate(document)
