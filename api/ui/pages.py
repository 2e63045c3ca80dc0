"""The dashboard's pages. Each is a shell: the data comes from the JSON API, fetched by the
page's script through one wrapper (``static/api.js``) that adds the API key when one is set, so
the pages never need a session of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False, default_response_class=HTMLResponse)


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return templates.TemplateResponse(
        request,
        template,
        {"ui": f"{root}/ui", "api": f"{root}/api/v1", "page": template.removesuffix(".html")}
        | context,
    )


@router.get("")
async def ui_root(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{request.scope.get('root_path', '')}/ui/", status_code=307)


@router.get("/")
async def job_list(request: Request) -> HTMLResponse:
    return _page(request, "jobs.html")


@router.get("/jobs/{job}")
async def job_page(request: Request, job: str) -> HTMLResponse:
    return _page(request, "job.html", job_id=job)


@router.get("/submit")
async def submit_page(request: Request) -> HTMLResponse:
    return _page(request, "submit.html")


@router.get("/schedules")
async def schedules_page(request: Request) -> HTMLResponse:
    return _page(request, "schedules.html")


@router.get("/interfaces")
async def interfaces_page(request: Request) -> HTMLResponse:
    return _page(request, "interfaces.html")


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
