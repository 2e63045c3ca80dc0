"""Liveness: the process answers, its database answers, and its embedded worker is alive."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EngineDep
from api.openapi import answers
from api.responses import FastJSONResponse
from schemas.api import Health

router = APIRouter(tags=["health"])


_UNHEALTHY = {"model": Health, "description": "The database query failed, or a worker stopped"}


@router.get(
    "/healthz",
    summary="Liveness: database reachable and embedded worker alive",
    description="200 when a `SELECT 1` on the database succeeds and no worker of this process "
    "stopped on its own; 503 otherwise, with the reason. Served at `/healthz` only.",
    responses={**answers(200, Health, "Healthy"), 503: _UNHEALTHY},
)
async def healthz(engine: EngineDep) -> FastJSONResponse:
    health = engine.health()
    try:
        await engine.ping()
    except Exception as exc:
        return FastJSONResponse({"status": "unhealthy", "database": repr(exc), **health}, 503)
    status = 503 if health["failed_workers"] else 200
    body = {"status": "ok" if status == 200 else "unhealthy", "database": "ok", **health}
    return FastJSONResponse(body, status)
