"""Reads the dashboard needs besides the job routes: one task in full, and the job figures."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.auth import PrincipalDep
from api.deps import EngineDep
from api.openapi import answers
from api.responses import FastJSONResponse
from schemas.dashboard import JobStats, TaskView

router = APIRouter(tags=["jobs"], default_response_class=FastJSONResponse)


@router.get(
    "/jobs/{job_id}/tasks/{task}",
    summary="One task: its request, state, last error and response",
    description="The request is shown as submitted (templates unrendered); secret header values "
    "are `***`.",
    responses=answers(200, TaskView, "The task", 404),
)
async def get_task(job_id: str, task: str, engine: EngineDep, principal: PrincipalDep) -> Any:
    return await engine.get_task(job_id, task, owner=principal.scope)


@router.get(
    "/stats",
    summary="Jobs per status, and jobs finished per minute lately",
    responses=answers(200, JobStats, "The figures", 422),
)
async def get_stats(
    engine: EngineDep,
    principal: PrincipalDep,
    minutes: Annotated[int, Query(ge=1, le=120)] = 15,
) -> Any:
    return await engine.job_stats(minutes=minutes, owner=principal.scope)
