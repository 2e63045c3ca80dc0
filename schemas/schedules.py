"""Cron schedule documents on the wire: what ``POST /api/v1/schedules`` takes and answers."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
#: how many upcoming fire times ``GET /schedules/{key}`` shows
UPCOMING = 5


class OverlapPolicy(StrEnum):
    ALLOW = "allow"  #: create the job whether or not the previous one has ended
    SKIP = "skip"  #: record the tick as skipped while the previous job has not ended
    CANCEL_PREVIOUS = "cancel_previous"  #: cancel the previous job if it runs, then create


class CatchUpPolicy(StrEnum):
    NONE = "none"  #: skip ticks missed during downtime
    LATEST = "latest"  #: fire the most recent missed tick once
    ALL = "all"  #: fire every missed tick (at most 1000, the most recent)


class ScheduledWorkflow(BaseModel):
    """A stored workflow definition to start at each tick (``PUT /workflows/{name}``), checked
    when the schedule is created or changed."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=256, description="the definition's name (`unknown_workflow`)"
    )
    version: int | None = Field(
        default=None,
        ge=1,
        description="the version to start; null: the latest version at each tick",
    )
    params: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="laid over the definition's `params` and checked against its "
        "`params_schema`; string values may read `{{ schedule.fire_time }}`, "
        "`{{ schedule.name }}`, `{{ schedule.id }}`, rendered at each tick first",
    )


class _Policies(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleIn(_Policies):
    """A schedule: a cron expression in a timezone and the job (or workflow) each tick starts."""

    name: str = Field(pattern=NAME_PATTERN, max_length=128)
    cron: str = Field(
        min_length=1,
        max_length=256,
        description="5 fields (minute hour day-of-month month day-of-week), or 6 with a "
        "leading seconds field",
    )
    timezone: str = Field(default="UTC", min_length=1, max_length=64)
    job: dict[str, Any] | None = Field(default=None, description="a job document (POST /jobs)")
    workflow: ScheduledWorkflow | None = Field(
        default=None, description="a stored workflow definition to start instead of a `job`"
    )
    enabled: bool = True
    overlap: OverlapPolicy = OverlapPolicy.ALLOW
    catch_up: CatchUpPolicy = CatchUpPolicy.NONE

    @model_validator(mode="after")
    def _one_target(self) -> ScheduleIn:
        if (self.job is None) == (self.workflow is None):
            raise ValueError("a schedule needs exactly one of `job` and `workflow`")
        return self


class ScheduleUpdate(_Policies):
    """``PATCH``: the fields given replace the stored ones."""

    cron: str | None = Field(default=None, min_length=1, max_length=256)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    job: dict[str, Any] | None = None
    workflow: ScheduledWorkflow | None = Field(
        default=None, description="a stored workflow definition to start instead of a `job`"
    )
    enabled: bool | None = None
    overlap: OverlapPolicy | None = None
    catch_up: CatchUpPolicy | None = None

    @model_validator(mode="after")
    def _not_both(self) -> ScheduleUpdate:
        if self.job is not None and self.workflow is not None:
            raise ValueError("a schedule takes one of `job` and `workflow`, not both")
        return self


class ScheduleFire(BaseModel):
    fire_time: str = Field(description="the tick, ISO 8601 UTC")
    outcome: str = Field(description="`fired`, `skipped` (overlap) or `failed`")
    job_id: str | None
    detail: str | None


class Schedule(BaseModel):
    id: str = Field(description="`sch_<ULID>`")
    name: str
    cron: str
    timezone: str
    job: dict[str, Any] | None
    workflow: dict[str, Any] | None = Field(
        description="`{name, version, params}` of the stored definition each tick starts, or null"
    )
    enabled: bool
    overlap: OverlapPolicy
    catch_up: CatchUpPolicy
    next_fire_at: str | None = Field(description="the next tick, ISO 8601 UTC; null if disabled")
    created_at: str
    updated_at: str


class ScheduleDetail(Schedule):
    upcoming: list[str] = Field(description=f"the next {UPCOMING} fire times, ISO 8601 UTC")
    recent: list[ScheduleFire] = Field(description="the last ticks handled, newest first")


class ScheduleList(BaseModel):
    items: list[Schedule] = Field(description="sorted by name")
