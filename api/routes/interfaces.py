"""InterfaceMaster CRUD.

Bodies are read by :func:`api.body.read_document`, as on the jobs routes: the same size limit,
content types and error reports.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from schemas.interfaces import InterfaceMasterIn, InterfaceMasterUpdate

from ..body import read_document
from ..deps import EngineDep, SettingsDep
from ..responses import FastJSONResponse

router = APIRouter(tags=["interface-masters"], default_response_class=FastJSONResponse)


@router.post("/interface-masters", status_code=201, summary="Create an InterfaceMaster")
async def create_master(request: Request, engine: EngineDep, settings: SettingsDep) -> Any:
    document = await read_document(request, settings)
    body = InterfaceMasterIn.model_validate(document)
    return await engine.create_master(body.model_dump())


@router.get("/interface-masters", summary="List InterfaceMasters")
async def list_masters(engine: EngineDep) -> Any:
    return {"items": await engine.list_masters()}


@router.get("/interface-masters/{key}", summary="One InterfaceMaster by id or name")
async def get_master(key: str, engine: EngineDep) -> Any:
    return await engine.get_master(key)


@router.put("/interface-masters/{key}", summary="Update; bumps version")
async def update_master(
    key: str, request: Request, engine: EngineDep, settings: SettingsDep
) -> Any:
    document = await read_document(request, settings)
    body = InterfaceMasterUpdate.model_validate(document)
    return await engine.update_master(key, body.model_dump(exclude_unset=True))


@router.delete("/interface-masters/{key}", status_code=204, summary="Delete (409 while in use)")
async def delete_master(key: str, engine: EngineDep) -> Response:
    await engine.delete_master(key)
    return Response(status_code=204)
