"""The client's exceptions, and the one table that maps an HTTP answer to one of them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import JobResult


class JobQueueClientError(Exception):
    """Base class of every exception this package raises."""


class TransportError(JobQueueClientError):
    """The server could not be reached or did not answer (connection refused, timeout, ...).

    The underlying ``httpx`` exception is the ``__cause__``.
    """


class UnexpectedResponse(JobQueueClientError):
    """A success status whose body is not the JSON document the endpoint documents."""

    def __init__(self, status_code: int, body: str, reason: str) -> None:
        self.status_code = status_code
        self.body = body
        super().__init__(f"unexpected answer ({status_code}): {reason}: {body[:200]!r}")


class WaitTimeout(JobQueueClientError):
    """``wait()`` gave up: the job had not ended within ``timeout`` seconds."""

    def __init__(self, job_id: str, timeout: float, last: JobResult) -> None:
        self.job_id = job_id
        self.timeout = timeout
        #: the last result polled (its ``status`` is still ``queued`` or ``running``)
        self.last = last
        super().__init__(f"job {job_id} still {last.status} after {timeout} s")


class ApiError(JobQueueClientError):
    """The server answered with an error status.

    ``detail`` is the answer's ``detail`` member as sent (a dict, a string, or ``None``), ``code``
    its ``detail.code`` when there is one, ``message`` a readable summary.
    """

    def __init__(self, status_code: int, detail: Any) -> None:
        self.status_code = status_code
        self.detail = detail
        self.code: str | None = None
        self.message = "" if detail is None else str(detail)
        if isinstance(detail, dict):
            code, message = detail.get("code"), detail.get("message")
            self.code = code if isinstance(code, str) else None
            self.message = str(message) if message is not None else self._summary(detail)
        label = f"{status_code} {self.code}" if self.code else str(status_code)
        super().__init__(f"{label}: {self.message}")

    @staticmethod
    def _summary(detail: dict[str, Any]) -> str:
        errors = detail.get("errors")
        if isinstance(errors, list) and errors:
            first = errors[0] if isinstance(errors[0], dict) else {}
            where = f" at {first['location']}" if first.get("location") else ""
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            return f"{first.get('code', 'error')}{where}: {first.get('message', '')}{more}"
        return str(detail)


class InvalidJob(ApiError):
    """422 ``invalid_job``: every problem of the document, each with its ``location``."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(status_code, detail)
        body = detail if isinstance(detail, dict) else {}
        self.errors: list[dict[str, Any]] = _dicts(body.get("errors"))
        self.warnings: list[dict[str, Any]] = _dicts(body.get("warnings"))


class NotFound(ApiError):
    """404: unknown job, task or InterfaceMaster, or a job past its TTL."""


class Conflict(ApiError):
    """409: the job is in the wrong state (cancel an ended job, retry a running one, ...)."""


class TooLarge(ApiError):
    """413: the request body is larger than the server accepts."""


class Unauthorized(ApiError):
    """401 or 403: the API key is missing, unknown or not allowed to do this."""


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


#: (status, ``detail.code`` or ``None`` for any code, exception class), first match wins
ERRORS: tuple[tuple[int, str | None, type[ApiError]], ...] = (
    (422, "invalid_job", InvalidJob),
    (404, None, NotFound),
    (409, None, Conflict),
    (413, None, TooLarge),
    (401, None, Unauthorized),
    (403, None, Unauthorized),
)


def api_error(status_code: int, detail: Any) -> ApiError:
    """The exception for an error answer: the first row of ``ERRORS`` that fits, else ApiError."""
    code = detail.get("code") if isinstance(detail, dict) else None
    for status, wanted, cls in ERRORS:
        if status == status_code and wanted in (None, code):
            return cls(status_code, detail)
    return ApiError(status_code, detail)
