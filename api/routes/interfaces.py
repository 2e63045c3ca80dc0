"""InterfaceMaster CRUD.

Bodies are read by :func:`api.body.read_document`, as on the jobs routes: the same size limit,
content types and error reports.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.auth import ActorDep, AdminDep
from api.body import read_document
from api.deps import EngineDep, SettingsDep
from api.openapi import BODY_ERRORS, answers, request_body
from api.responses import FastJSONResponse
from schemas.api import InterfaceMaster, InterfaceMasterList
from schemas.interfaces import InterfaceMasterIn, InterfaceMasterUpdate

router = APIRouter(tags=["interface-masters"], default_response_class=FastJSONResponse)


@router.post(
    "/interface-masters",
    status_code=201,
    summary="Create an InterfaceMaster",
    description="A named pair of draft-07 JSON Schemas that tasks name with `interface`. "
    "A schema that is not valid draft-07 is refused with 422 `invalid_schema`.",
    openapi_extra=request_body(InterfaceMasterIn, "The master, as JSON or YAML."),
    responses=answers(201, InterfaceMaster, "Created", 409, *BODY_ERRORS),
)
async def create_master(
    request: Request, engine: EngineDep, settings: SettingsDep, _: AdminDep, actor: ActorDep
) -> Any:
    document = await read_document(request, settings)
    body = InterfaceMasterIn.model_validate(document)
    return await engine.create_master(body.model_dump(), by=actor)


@router.get(
    "/interface-masters",
    summary="List InterfaceMasters",
    responses=answers(200, InterfaceMasterList, "Every master, sorted by name"),
)
async def list_masters(engine: EngineDep) -> Any:
    return {"items": await engine.list_masters()}


@router.get(
    "/interface-masters/{key}",
    summary="One InterfaceMaster by id or name",
    responses=answers(200, InterfaceMaster, "The master", 404),
)
async def get_master(key: str, engine: EngineDep) -> Any:
    return await engine.get_master(key)


@router.put(
    "/interface-masters/{key}",
    summary="Update; bumps version",
    description="The fields given replace the stored ones (an explicit `null` clears a "
    "schema); `version` goes up by one. Jobs that exist keep the schemas they were "
    "validated with.",
    openapi_extra=request_body(
        InterfaceMasterUpdate, "Any subset of the master's fields, as JSON or YAML."
    ),
    responses=answers(200, InterfaceMaster, "The updated master", 404, 409, *BODY_ERRORS),
)
async def update_master(
    key: str,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    _: AdminDep,
    actor: ActorDep,
) -> Any:
    document = await read_document(request, settings)
    body = InterfaceMasterUpdate.model_validate(document)
    return await engine.update_master(key, body.model_dump(exclude_unset=True), by=actor)


@router.delete(
    "/interface-masters/{key}",
    status_code=204,
    summary="Delete (409 while in use)",
    description="Refused with 409 while a queued or running job uses the master.",
    responses=answers(204, None, "Deleted", 404, 409),
)
async def delete_master(key: str, engine: EngineDep, _: AdminDep, actor: ActorDep) -> Response:
    await engine.delete_master(key, by=actor)
    return Response(status_code=204)
