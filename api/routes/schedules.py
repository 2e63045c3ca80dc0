"""Cron schedules: create, list, read (next fire times, last ticks), update, delete.

Bodies are read by :func:`api.body.read_document`, as on the jobs routes. The schedule's job
document is validated at creation exactly as ``POST /jobs`` validates it, with every problem's
location under ``/job``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.auth import PrincipalDep
from api.body import read_document
from api.deps import EngineDep, SettingsDep
from api.openapi import BODY_ERRORS, answers, request_body
from api.responses import FastJSONResponse
from schemas.schedules import ScheduleDetail, ScheduleIn, ScheduleList, ScheduleUpdate

router = APIRouter(tags=["schedules"], default_response_class=FastJSONResponse)


@router.post(
    "/schedules",
    status_code=201,
    summary="Create a cron schedule",
    description="Each tick of `cron` (in `timezone`) creates one job from `job`, across every "
    "process. The job document is validated now (422 with locations under `/job`); "
    "its templates may read `schedule.fire_time`, `schedule.name` and `schedule.id`.",
    openapi_extra=request_body(ScheduleIn, "The schedule, as JSON or YAML."),
    responses=answers(201, ScheduleDetail, "Created", 409, *BODY_ERRORS),
)
async def create_schedule(
    request: Request, engine: EngineDep, settings: SettingsDep, principal: PrincipalDep
) -> Any:
    document = await read_document(request, settings)
    body = ScheduleIn.model_validate(document)
    created = await engine.create_schedule(body.model_dump(mode="json"), owner=principal.owner)
    return FastJSONResponse(created, status_code=201)


@router.get(
    "/schedules",
    summary="List schedules",
    responses=answers(200, ScheduleList, "Every schedule, sorted by name, with `next_fire_at`"),
)
async def list_schedules(engine: EngineDep, principal: PrincipalDep) -> Any:
    return {"items": await engine.list_schedules(owner=principal.scope)}


@router.get(
    "/schedules/{key}",
    summary="One schedule by id or name",
    description="With `upcoming` (its next fire times) and `recent` (the last ticks it "
    "handled: the job each created, or why it was skipped).",
    responses=answers(200, ScheduleDetail, "The schedule", 404),
)
async def get_schedule(key: str, engine: EngineDep, principal: PrincipalDep) -> Any:
    return await engine.get_schedule(key, owner=principal.scope)


@router.patch(
    "/schedules/{key}",
    summary="Update a schedule",
    description="The fields given replace the stored ones: `enabled: false` stops firing; a "
    "new `cron` or `timezone`, or enabling again, fires from the next tick after now.",
    openapi_extra=request_body(ScheduleUpdate, "Any subset of the fields, as JSON or YAML."),
    responses=answers(200, ScheduleDetail, "The updated schedule", 404, *BODY_ERRORS),
)
async def update_schedule(
    key: str, request: Request, engine: EngineDep, settings: SettingsDep, principal: PrincipalDep
) -> Any:
    document = await read_document(request, settings)
    body = ScheduleUpdate.model_validate(document)
    fields = body.model_dump(mode="json", exclude_unset=True)
    return await engine.update_schedule(key, fields, owner=principal.scope)


@router.delete(
    "/schedules/{key}",
    status_code=204,
    summary="Delete a schedule",
    description="Jobs it created stay.",
    responses=answers(204, None, "Deleted", 404),
)
async def delete_schedule(key: str, engine: EngineDep, principal: PrincipalDep) -> Response:
    await engine.delete_schedule(key, owner=principal.scope)
    return Response(status_code=204)
