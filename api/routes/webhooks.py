"""``GET /jobs/{id}/webhooks``: the deliveries of a job's completion webhook, every try."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import PrincipalDep
from api.deps import EngineDep
from api.openapi import answers
from api.responses import FastJSONResponse
from schemas.callbacks import WebhookDeliveries

router = APIRouter(tags=["jobs"], default_response_class=FastJSONResponse)


@router.get(
    "/jobs/{job_id}/webhooks",
    summary="Deliveries of the job's on_complete webhook, with every try",
    description="One delivery per ended job whose `on_complete.events` named its status; each "
    "lists its tries (status code or error, time, when the next try is due).",
    responses=answers(200, WebhookDeliveries, "The job's deliveries", 404),
)
async def get_webhooks(job_id: str, engine: EngineDep, principal: PrincipalDep) -> Any:
    return await engine.get_webhooks(job_id, owner=principal.scope)
