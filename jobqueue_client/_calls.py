"""Request building and response decoding, shared by the sync and async clients.

Nothing here does I/O: each function returns a :class:`Call` (what to send and how to read the
answer), the clients send it, and :func:`finish` turns the answer into a result or an exception.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import httpx

from .errors import UnexpectedResponse, WaitTimeout, api_error
from .models import (
    Attempt,
    CallbackResult,
    Job,
    JobDetail,
    JobPage,
    JobResult,
    Validation,
    WebhookDelivery,
)

T = TypeVar("T")

API_PREFIX = "/api/v1"
USER_AGENT = "jobqueue-client/0.1"

#: a job document: a mapping (sent as JSON) or YAML text
JobDocument = Mapping[str, Any] | str
#: a ``created_after`` / ``created_before`` bound: an aware datetime or ISO 8601 text
TimeBound = datetime | str | None


class JobFilters(TypedDict, total=False):
    """The filters of ``list`` and ``iter_jobs``: a job matches all that are given."""

    status: str | None
    tag: str | None
    name: str | None
    created_after: TimeBound
    created_before: TimeBound


@dataclass(frozen=True, kw_only=True)
class Call(Generic[T]):
    """One request to send, and how to read a success answer to it."""

    method: str
    path: str
    decode: Callable[[httpx.Response], T]
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None


def api_url(base_url: str) -> str:
    """The API root for a server's base URL (which may already end with ``/api/v1``)."""
    root = base_url.rstrip("/")
    return root if root.endswith(API_PREFIX) else root + API_PREFIX


def default_headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def finish(call: Call[T], response: httpx.Response) -> T:
    """The result of a call from its answer; an error status raises the ApiError that fits."""
    if not response.is_success:
        raise api_error(response.status_code, _error_detail(response))
    try:
        return call.decode(response)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnexpectedResponse(response.status_code, response.text, repr(exc)) from exc


def _error_detail(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text or None
    return body.get("detail") if isinstance(body, dict) else body


def _json(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    if not isinstance(body, dict):
        raise TypeError(f"expected a JSON object, got {type(body).__name__}")
    return body


def _job_path(job_id: str, *rest: str) -> str:
    return "/".join(("/jobs", quote(job_id, safe=""), *(quote(p, safe="") for p in rest)))


def _document(job: JobDocument) -> tuple[bytes, dict[str, str]]:
    if isinstance(job, str):
        return job.encode(), {"Content-Type": "application/yaml"}
    if not isinstance(job, Mapping):
        raise TypeError(f"a job is a mapping or YAML text, not {type(job).__name__}")
    text = json.dumps(job, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode(), {"Content-Type": "application/json"}


def _bound(value: TimeBound, name: str) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} needs a time zone (e.g. datetime.now(UTC))")
        return value.isoformat()
    return value


def _job_answer(response: httpx.Response) -> Job:
    replayed = response.headers.get("idempotent-replayed", "").lower() == "true"
    return Job.from_dict(_json(response), replayed=replayed)


def submit(job: JobDocument, idempotency_key: str | None = None) -> Call[Job]:
    content, headers = _document(job)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return Call(method="POST", path="/jobs", content=content, headers=headers, decode=_job_answer)


def validate(job: JobDocument) -> Call[Validation]:
    content, headers = _document(job)
    return Call(
        method="POST",
        path="/jobs/validate",
        content=content,
        headers=headers,
        decode=lambda r: Validation.from_dict(_json(r)),
    )


def get(job_id: str) -> Call[JobDetail]:
    return Call(
        method="GET", path=_job_path(job_id), decode=lambda r: JobDetail.from_dict(_json(r))
    )


def result(job_id: str) -> Call[JobResult]:
    return Call(
        method="GET",
        path=_job_path(job_id, "result"),
        decode=lambda r: JobResult.from_dict(_json(r)),
    )


def attempts(job_id: str, task: str) -> Call[tuple[Attempt, ...]]:
    return Call(
        method="GET",
        path=_job_path(job_id, "tasks", task, "attempts"),
        decode=lambda r: tuple(Attempt.from_dict(a) for a in _json(r)["attempts"]),
    )


def cancel(job_id: str) -> Call[Job]:
    return Call(method="POST", path=_job_path(job_id, "cancel"), decode=_job_answer)


def retry(job_id: str) -> Call[Job]:
    return Call(method="POST", path=_job_path(job_id, "retry"), decode=_job_answer)


def delete(job_id: str) -> Call[None]:
    return Call(method="DELETE", path=_job_path(job_id), decode=lambda r: None)


def complete_callback(
    token: str, *, output: Any = None, error: Mapping[str, Any] | None = None
) -> Call[CallbackResult]:
    """``error`` given: report a failure; else success with ``output``."""
    report: dict[str, Any] = (
        {"status": "failed", "error": dict(error)}
        if error is not None
        else {"status": "succeeded", "output": output}
    )
    return Call(
        method="POST",
        path="/callbacks/" + quote(token, safe=""),
        content=json.dumps(report, ensure_ascii=False, allow_nan=False).encode(),
        headers={"Content-Type": "application/json"},
        decode=lambda r: CallbackResult.from_dict(_json(r)),
    )


def webhooks(job_id: str) -> Call[tuple[WebhookDelivery, ...]]:
    return Call(
        method="GET",
        path=_job_path(job_id, "webhooks"),
        decode=lambda r: tuple(WebhookDelivery.from_dict(d) for d in _json(r)["deliveries"]),
    )


def list_jobs(
    *, limit: int | None = None, cursor: str | None = None, **filters: Unpack[JobFilters]
) -> Call[JobPage]:
    given = {
        "status": filters.get("status"),
        "tag": filters.get("tag"),
        "name": filters.get("name"),
        "created_after": _bound(filters.get("created_after"), "created_after"),
        "created_before": _bound(filters.get("created_before"), "created_before"),
        "limit": None if limit is None else str(limit),
        "cursor": cursor,
    }
    params = {key: value for key, value in given.items() if value is not None}
    return Call(
        method="GET", path="/jobs", params=params, decode=lambda r: JobPage.from_dict(_json(r))
    )


def _workflow_path(name: str, *rest: str) -> str:
    return "/".join(("/workflows", quote(name, safe=""), *(quote(p, safe="") for p in rest)))


def put_workflow(name: str, document: JobDocument) -> Call[tuple[dict[str, Any], bool]]:
    """Save a definition: (the stored version, whether it is a new version)."""
    content, headers = _document(document)
    return Call(
        method="PUT",
        path=_workflow_path(name),
        content=content,
        headers=headers,
        decode=lambda r: (_json(r), r.status_code == 201),
    )


def list_workflows() -> Call[tuple[dict[str, Any], ...]]:
    return Call(method="GET", path="/workflows", decode=lambda r: tuple(_json(r)["items"]))


def get_workflow(name: str, version: int | None = None) -> Call[dict[str, Any]]:
    rest = ("versions", str(version)) if version is not None else ()
    return Call(method="GET", path=_workflow_path(name, *rest), decode=_json)


def delete_workflow(name: str) -> Call[None]:
    return Call(method="DELETE", path=_workflow_path(name), decode=lambda r: None)


def start_workflow(
    name: str,
    params: Mapping[str, Any] | None,
    version: int | None,
    idempotency_key: str | None,
) -> Call[Job]:
    run: dict[str, Any] = {"params": dict(params or {})}
    if version is not None:
        run["version"] = version
    content, headers = _document(run)
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return Call(
        method="POST",
        path=_workflow_path(name, "runs"),
        content=content,
        headers=headers,
        decode=_job_answer,
    )


class Deadline:
    """The pacing of ``wait()``: how long to sleep before the next poll, or WaitTimeout."""

    def __init__(self, job_id: str, timeout: float | None, poll_interval: float) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative")
        self.job_id = job_id
        self.timeout = timeout
        self.poll_interval = poll_interval
        self._end = None if timeout is None else time.monotonic() + timeout

    def next_delay(self, last: JobResult) -> float:
        """Seconds to sleep before polling again; raises WaitTimeout once time is up."""
        if self._end is None or self.timeout is None:
            return self.poll_interval
        remaining = self._end - time.monotonic()
        if remaining <= 0:
            raise WaitTimeout(self.job_id, self.timeout, last)
        return min(self.poll_interval, remaining)
