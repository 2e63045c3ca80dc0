"""API keys (admin only): create (the key is shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.auth import ActorDep, AdminDep
from api.body import read_document
from api.deps import EngineDep, SettingsDep
from api.openapi import BODY_ERRORS, answers, request_body
from api.responses import FastJSONResponse
from schemas.security import CreatedKey, KeyCreate, KeyList

router = APIRouter(tags=["keys"], default_response_class=FastJSONResponse)


@router.post(
    "/keys",
    status_code=201,
    summary="Create an API key (admin)",
    description="The answer carries the key itself, once: only its SHA-256 is stored.",
    openapi_extra=request_body(KeyCreate, "The key's name and whether it is an admin key."),
    responses=answers(201, CreatedKey, "Created", 403, 409, *BODY_ERRORS),
)
async def create_key(
    request: Request, engine: EngineDep, settings: SettingsDep, _: AdminDep, actor: ActorDep
) -> Any:
    body = KeyCreate.model_validate(await read_document(request, settings))
    key, info = await engine.create_key(body.name, admin=body.admin, by=actor)
    return {**info, "key": key}


@router.get(
    "/keys",
    summary="List the API keys (admin)",
    description="Keys of the environment and of the database; never a key itself.",
    responses=answers(200, KeyList, "Every active key", 403),
)
async def list_keys(engine: EngineDep, _: AdminDep) -> Any:
    return {"items": await engine.list_keys()}


@router.delete(
    "/keys/{name}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API key (admin)",
    description="The key answers 401 from now on; its jobs stay, owned by its name.",
    responses=answers(204, None, "Revoked", 403, 404, 409),
)
async def revoke_key(name: str, engine: EngineDep, _: AdminDep, actor: ActorDep) -> Response:
    await engine.revoke_key(name, by=actor)
    return Response(status_code=204)
