"""The REST app: ``uvicorn api.main:app``. The engine is made in ``lifespan``, never at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.routing import Route

from api import errors, openapi, ui
from api.auth import authenticate
from api.cors import LazyCORS
from api.logs import configure_logging
from api.responses import FastJSONResponse
from api.routes import (
    audit,
    callbacks,
    dashboard_data,
    events,
    health,
    interfaces,
    jobs,
    keys,
    metrics,
    schedules,
    webhooks,
    workflows,
)
from api.settings import Settings
from engine import Engine

log = logging.getLogger("jobqueue.api")

DESCRIPTION = """\
Every endpoint is served under `/api/v1` and, identically, without the prefix; `/healthz` only
without it. Request bodies are JSON or YAML (`Content-Type: application/json` or
`application/yaml`; none means JSON). Errors answer
`{"detail": {"code": ..., "message": ...}}`, and invalid input a 422 report with every problem
and its location. With API keys configured (`JOBQUEUE_API_KEYS`, `jobqueue keys create`), every
endpoint but `/healthz` needs `Authorization: Bearer <key>` (401 without); a key sees only the
jobs it created (another key's job answers 404); admin keys see every job and alone may use
`/keys`, `/audit` and change InterfaceMasters (403 otherwise). Without keys the API is open.
"""


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """Build the app. Tests may hand in an opened ``engine``; it is then not closed here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or Settings()
        configure_logging(cfg.log_level, cfg.log_format, cfg.engine_config().secret_header_names)
        app.state.settings = cfg
        owned = engine is None
        app.state.engine = engine or await Engine.open(cfg.engine_config())
        app.state.loop = asyncio.get_running_loop()
        if owned and cfg.embedded_worker:
            app.state.engine.start_worker()
        if not await app.state.engine.auth_enabled():
            log.warning(
                "no API key is configured (JOBQUEUE_API_KEYS, jobqueue keys create): the API "
                "is open to anyone who can reach it"
            )
        try:
            yield
        finally:
            if owned:
                await app.state.engine.close()

    app = FastAPI(
        title="JobQueue",
        version="0.1.0",
        summary="HTTP API calls as persisted, monitored jobs: validated DAGs of HTTP tasks.",
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=FastJSONResponse,
        # FastAPI's OpenTelemetry hook asks the provider registry on every request (measured:
        # ~4% of the submit path); instrument with an OTel middleware if you need traces.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        dependencies=[Depends(authenticate)],
    )
    app.add_middleware(LazyCORS)
    errors.install(app)
    openapi.install(app)
    for router in (
        jobs.router,
        interfaces.router,
        schedules.router,
        keys.router,
        audit.router,
        workflows.router,
        events.router,
        dashboard_data.router,
        webhooks.router,
        callbacks.router,
    ):
        app.include_router(router, prefix="/api/v1")
        app.include_router(router, include_in_schema=False)
    app.include_router(health.router)
    app.include_router(metrics.router)
    ui.install(app)
    _fast_submit(app)
    return app


def _fast_submit(app: FastAPI) -> None:
    """Serve ``POST /jobs`` through a plain Starlette route placed first.

    The handler takes only the request, so FastAPI's per-request machinery (router lookup
    through included routers, dependency resolution, exit stacks) adds nothing but cost on the
    hottest path: measured at about a third of a submission's CPU. The documented APIRoute stays
    registered for the OpenAPI schema; this route answers first.
    """
    for path in ("/api/v1/jobs", "/jobs"):
        app.router.routes.insert(0, Route(path, jobs.submit_job, methods=["POST"]))


app = create_app()
