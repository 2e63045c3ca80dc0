"""InterfaceMaster CRUD (SPEC section 5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from api.deps import EngineDep
from api.responses import FastJSONResponse
from schemas.interfaces import InterfaceMasterIn, InterfaceMasterUpdate

router = APIRouter(tags=["interface-masters"], default_response_class=FastJSONResponse)


@router.post("/interface-masters", status_code=201, summary="Create an InterfaceMaster")
async def create_master(body: InterfaceMasterIn, engine: EngineDep) -> Any:
    return await engine.create_master(body.model_dump())


@router.get("/interface-masters", summary="List InterfaceMasters")
async def list_masters(engine: EngineDep) -> Any:
    return {"items": await engine.list_masters()}


@router.get("/interface-masters/{key}", summary="One InterfaceMaster by id or name")
async def get_master(key: str, engine: EngineDep) -> Any:
    return await engine.get_master(key)


@router.put("/interface-masters/{key}", summary="Update; bumps version")
async def update_master(key: str, body: InterfaceMasterUpdate, engine: EngineDep) -> Any:
    return await engine.update_master(key, body.model_dump(exclude_unset=True))


@router.delete("/interface-masters/{key}", status_code=204, summary="Delete (409 while in use)")
async def delete_master(key: str, engine: EngineDep) -> Response:
    await engine.delete_master(key)
    return Response(status_code=204)
