"""Each engine error maps to exactly one HTTP status, here and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from api.body import BodyError, BodyTimeout, UnsupportedMedia
from api.responses import FastJSONResponse
from engine import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    JobInvalid,
    JobQueueError,
    NotFound,
    TooLarge,
    Unauthorized,
    Unavailable,
    WorkflowFileError,
    join_pointer,
)

log = logging.getLogger("jobqueue.api")

STATUS: list[tuple[type[Exception], int, str]] = [
    (JobInvalid, 422, "invalid_job"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (IdempotencyMismatch, 422, "idempotency_key_reused"),
    (TooLarge, 413, "too_large"),
    (Unauthorized, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (Unavailable, 503, "unavailable"),
    (UnsupportedMedia, 415, "unsupported_media_type"),
    (BodyTimeout, 408, "request_timeout"),
]


def validation_problems(errors: list[Any], *, skip_prefix: int = 0) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = list(err.get("loc", ()))[skip_prefix:]
        out.append(
            {
                "code": "invalid_field",
                "location": join_pointer(loc),
                "message": err.get("msg", "invalid"),
                "type": err.get("type"),
            }
        )
    return out


def status_of(exc: Exception) -> tuple[int, str]:
    """The HTTP status and error code of an engine error (the one mapping of this module)."""
    for cls, status, code in STATUS:
        if isinstance(exc, cls):
            return status, code
    return 400, "bad_request"


def _error(status: int, code: str, message: str, **extra: Any) -> FastJSONResponse:
    return FastJSONResponse({"detail": {"code": code, "message": message, **extra}}, status)


def install(app: FastAPI) -> None:
    async def on_engine_error(request: Request, exc: Exception) -> FastJSONResponse:
        if isinstance(exc, WorkflowFileError):
            exc = JobInvalid([exc.to_problem()])
        if isinstance(exc, JobInvalid):
            return FastJSONResponse(
                {
                    "detail": {
                        "code": "invalid_job",
                        "errors": [p.to_dict() for p in exc.errors],
                        "warnings": [p.to_dict() for p in exc.warnings],
                    }
                },
                422,
            )
        status, code = status_of(exc)
        if isinstance(exc, BodyTimeout):
            log.info("%s %s: %s", request.method, request.url.path, exc)
            # The rest of the body may still be on its way: close the connection after the answer.
            response = _error(status, code, str(exc))
            response.headers["Connection"] = "close"
            return response
        response = _error(status, code, str(exc))
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def on_pydantic_error(_: Request, exc: Exception) -> FastJSONResponse:
        assert isinstance(exc, ValidationError | RequestValidationError)
        request_error = isinstance(exc, RequestValidationError)
        errors = validation_problems(list(exc.errors()), skip_prefix=1 if request_error else 0)
        code = "invalid_request" if request_error else "invalid_job"
        return FastJSONResponse({"detail": {"code": code, "errors": errors, "warnings": []}}, 422)

    async def on_disconnect(request: Request, _: Exception) -> Response:
        # An aborted upload is the client's doing, not a server error: one line, no traceback.
        # The answer is never delivered (the connection is gone); it only ends the request.
        log.info(
            "%s %s: the client disconnected before sending the whole request body "
            "(Content-Length %s)",
            request.method,
            request.url.path,
            request.headers.get("content-length", "not given"),
        )
        return Response(status_code=400)

    app.add_exception_handler(JobQueueError, on_engine_error)
    app.add_exception_handler(BodyError, on_engine_error)
    app.add_exception_handler(ValidationError, on_pydantic_error)
    app.add_exception_handler(RequestValidationError, on_pydantic_error)
    app.add_exception_handler(ClientDisconnect, on_disconnect)
