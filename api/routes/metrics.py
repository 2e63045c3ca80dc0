"""Prometheus metrics of this process (``jobqueue_*``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import EngineDep

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(engine: EngineDep) -> Response:
    """Tasks finished by status, attempts by outcome, HTTP call durations by target host, lease
    losses, workers alive, and the queue's depth and oldest age (read at scrape time)."""
    return Response(await engine.metrics_text(), media_type=CONTENT_TYPE_LATEST)
