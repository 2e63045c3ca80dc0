"""The body of ``POST /api/v1/callbacks/{token}``: how the remote work ended."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator


class CallbackReport(BaseModel):
    """``{"status": "succeeded", "output": ...}`` or ``{"status": "failed", "error": {...}}``."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["succeeded", "failed"]
    #: the task's output (what downstream templates see as ``tasks.<name>.output``)
    output: JsonValue = None
    #: why the remote work failed; kept in the task's ``error.reported``
    error: dict[str, JsonValue] | None = Field(default=None)

    @model_validator(mode="after")
    def _fits_status(self) -> CallbackReport:
        if self.status == "succeeded" and self.error is not None:
            raise ValueError("a succeeded callback carries output, not error")
        if self.status == "failed" and self.output is not None:
            raise ValueError("a failed callback carries error, not output")
        return self


class CallbackAnswer(BaseModel):
    """The task the token finished, and the status it ended with."""

    job_id: str
    task: str
    status: Literal["succeeded", "failed"]
    error: dict[str, JsonValue] | None = None


class WebhookTry(BaseModel):
    attempt: int
    at: str
    status_code: int | None
    error: dict[str, JsonValue] | None
    duration_ms: float | None
    #: when the next try is due (null after the last one)
    next_attempt_at: str | None


class WebhookDelivery(BaseModel):
    delivery_id: str = Field(description="`wh_<ULID>`; the `X-JobQueue-Delivery` header")
    event: Literal["job.finished"]
    job_status: Literal["succeeded", "failed", "canceled"]
    url: str
    headers: dict[str, str]
    status: Literal["pending", "delivered", "failed"]
    attempts: list[WebhookTry]
    next_attempt_at: str | None
    created_at: str
    finished_at: str | None


class WebhookDeliveries(BaseModel):
    job_id: str
    deliveries: list[WebhookDelivery]
