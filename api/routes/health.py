"""Liveness: the process answers, its database answers, and its embedded worker is alive."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EngineDep
from api.responses import FastJSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: database reachable and embedded worker alive")
async def healthz(engine: EngineDep) -> FastJSONResponse:
    health = engine.health()
    try:
        await engine.ping()
    except Exception as exc:
        return FastJSONResponse({"status": "unhealthy", "database": repr(exc), **health}, 503)
    status = 503 if health["failed_workers"] else 200
    body = {"status": "ok" if status == 200 else "unhealthy", "database": "ok", **health}
    return FastJSONResponse(body, status)
