"""The audit log (admin only): who created, canceled, retried or deleted what, and when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.auth import AdminDep
from api.deps import EngineDep
from api.openapi import answers
from api.responses import FastJSONResponse
from engine import AuditFilter
from schemas.security import AuditPage

router = APIRouter(tags=["audit"], default_response_class=FastJSONResponse)


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@router.get(
    "/audit",
    summary="The audit log, newest first (admin)",
    description="Filters: `actor` (a key's name, or `anonymous`), `action` (`job.create`, "
    "`job.cancel`, `job.retry`, `job.delete`, `interface_master.create|update|delete`, "
    "`key.create`, `key.revoke`), `job_id`, `after` / `before` (ISO 8601). Pass "
    "`next_cursor` back as `cursor`, with the same filters, for the next page.",
    responses=answers(200, AuditPage, "A page of the audit log", 403, 422),
)
async def audit_log(
    engine: EngineDep,
    _: AdminDep,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    job_id: Annotated[str | None, Query(max_length=256)] = None,
    after: datetime | None = None,
    before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Any:
    flt = AuditFilter(
        actor=actor, action=action, target=job_id, after=_epoch(after), before=_epoch(before)
    )
    try:
        return await engine.audit_log(flt, limit=limit, cursor=cursor)
    except ValueError as exc:
        return FastJSONResponse(
            {"detail": {"code": "invalid_request", "message": str(exc), "location": "/cursor"}},
            422,
        )
