"""``POST /callbacks/{token}``: the remote system reports how a callback task's work ended.

No API key: the token is the capability (256 random bits, stored hashed, single use).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from api.body import read_document
from api.deps import EngineDep, SettingsDep
from api.errors import validation_problems
from api.openapi import BODY_ERRORS, answers, request_body
from api.responses import FastJSONResponse
from schemas.callbacks import CallbackAnswer, CallbackReport

router = APIRouter(tags=["callbacks"], default_response_class=FastJSONResponse)


@router.post(
    "/callbacks/{token}",
    summary="Finish a task that waits for its callback",
    description='`{"status": "succeeded", "output": ...}` or `{"status": "failed", "error": '
    "{...}}`. The output is checked against the task's output schema (a mismatch fails the "
    "task, and the answer says so). A token works once: again, or after its task timed out or "
    "its job was canceled, 409; an unknown token 404.",
    openapi_extra=request_body(CallbackReport, "How the remote work ended."),
    responses=answers(200, CallbackAnswer, "The task ended", 404, 409, *BODY_ERRORS),
)
async def complete_callback(
    token: str, request: Request, engine: EngineDep, settings: SettingsDep
) -> Any:
    document = await read_document(request, settings)
    try:
        report = CallbackReport.model_validate(document)
    except ValidationError as exc:
        errors = validation_problems(list(exc.errors(include_url=False)))
        return FastJSONResponse(
            {"detail": {"code": "invalid_request", "errors": errors, "warnings": []}}, 422
        )
    return await engine.complete_callback(
        token, status=report.status, output=report.output, error=report.error
    )
