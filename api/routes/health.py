"""Liveness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import EngineDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers and its database is reachable")
async def healthz(engine: EngineDep) -> Any:
    return {"status": "ok", "database": engine.store.engines.name}
