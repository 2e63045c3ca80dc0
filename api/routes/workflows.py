"""Workflow definitions: save (versioned), read, delete, and start runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from api.auth import ActorDep, AdminDep, PrincipalDep
from api.body import decode_document, read_body, read_document
from api.deps import EngineDep, SettingsDep
from api.openapi import BODY_ERRORS, answers, request_body
from api.responses import FastJSONResponse
from engine import JobInvalid, Problem
from schemas.workflows import (
    WORKFLOW_NAME_PATTERN,
    RunAnswer,
    WorkflowDefinition,
    WorkflowDetail,
    WorkflowList,
    WorkflowRun,
)

router = APIRouter(tags=["workflows"], default_response_class=FastJSONResponse)

Name = Annotated[str, Path(pattern=WORKFLOW_NAME_PATTERN, max_length=128)]


@router.put(
    "/workflows/{name}",
    status_code=201,
    summary="Save a workflow definition (a new version when it changed)",
    description="Validated like a job, with `params` typed by `params_schema`. A document that "
    "differs from the latest version becomes the next version (201); an identical one answers "
    "200 with the latest version.",
    openapi_extra=request_body(WorkflowDefinition, "The definition, as JSON or YAML."),
    responses={
        **answers(201, WorkflowDetail, "A new version was stored", 403, *BODY_ERRORS),
        200: {"model": WorkflowDetail, "description": "Unchanged: the latest version"},
    },
)
async def put_workflow(
    name: Name, request: Request, engine: EngineDep, settings: SettingsDep, _: AdminDep
) -> Any:
    document = await read_document(request, settings)
    saved = await engine.put_workflow(name, document)
    return FastJSONResponse(saved.definition, status_code=201 if saved.created else 200)


@router.get(
    "/workflows",
    summary="List workflow definitions with their latest version",
    responses=answers(200, WorkflowList, "Every definition, by name"),
)
async def list_workflows(engine: EngineDep) -> Any:
    return {"items": await engine.list_workflows()}


@router.get(
    "/workflows/{name}",
    summary="The latest version of a definition, with the list of its versions",
    responses=answers(200, WorkflowDetail, "The definition", 404, 422),
)
async def get_workflow(name: Name, engine: EngineDep) -> Any:
    return await engine.get_workflow(name)


@router.get(
    "/workflows/{name}/versions/{version}",
    summary="One version of a definition",
    responses=answers(200, WorkflowDetail, "That version", 404, 422),
)
async def get_workflow_version(
    name: Name, version: Annotated[int, Path(ge=1)], engine: EngineDep
) -> Any:
    return await engine.get_workflow(name, version)


@router.delete(
    "/workflows/{name}",
    status_code=204,
    response_class=Response,
    summary="Delete a definition, every version (409 while another definition uses it)",
    description="Jobs started from it keep running. Refused with 409 while another definition "
    "starts it as a sub-workflow.",
    responses=answers(204, None, "Deleted", 403, 404, 409, 422),
)
async def delete_workflow(name: Name, engine: EngineDep, _: AdminDep) -> Response:
    await engine.delete_workflow(name)
    return Response(status_code=204)


@router.post(
    "/workflows/{name}/runs",
    status_code=201,
    summary="Start a job of a definition",
    description="`params` go over the definition's default `params` and are checked against its "
    "`params_schema` (422 `invalid_params` with every violation). `version` picks a version "
    "(default: the latest). Honours `Idempotency-Key` like `POST /jobs`.",
    openapi_extra=request_body(WorkflowRun, "The run, as JSON or YAML."),
    responses={
        **answers(201, RunAnswer, "The job was created", 404, *BODY_ERRORS),
        200: {
            "model": RunAnswer,
            "description": "Replayed: the job an earlier request with this `Idempotency-Key` "
            "and the same body created",
        },
    },
)
async def start_run(
    name: Name,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    actor: ActorDep,
) -> Any:
    key = request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= 256:
        raise JobInvalid(
            [Problem(code="invalid_header", message="Idempotency-Key must be 1-256 characters")]
        )
    raw = await read_body(request, settings.max_request_bytes, settings.body_read_timeout)
    document = decode_document(raw, request.headers.get("content-type")) if raw.strip() else {}
    run = WorkflowRun.model_validate(document)
    started = await engine.start_workflow(
        name,
        run.params,
        version=run.version,
        tags=run.tags,
        priority=run.priority,
        scheduled_at=run.scheduled_at,
        idempotency_key=key,
        owner=principal.owner,
        by=actor,
    )
    body: dict[str, Any] = {
        "job_id": started.job_id,
        "status": started.status,
        "workflow": started.workflow,
    }
    if started.warnings:
        body["warnings"] = started.warnings
    prefix = "/api/v1" if request.scope["path"].startswith("/api/v1/") else ""
    headers = {"Location": f"{request.scope.get('root_path', '')}{prefix}/jobs/{started.job_id}"}
    if started.existing:
        headers["Idempotent-Replayed"] = "true"
    return FastJSONResponse(body, status_code=200 if started.existing else 201, headers=headers)
