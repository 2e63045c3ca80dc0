"""Jobs: submit, validate, list, detail, result, attempts, graph, cancel, retry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import ValidationError

from api.auth import ActorDep, PrincipalDep, actor_of, authenticate
from api.body import read_document
from api.deps import EngineDep, SettingsDep
from api.errors import status_of, validation_problems
from api.openapi import BODY_ERRORS, answers, request_body
from api.responses import FastJSONResponse
from api.settings import Settings
from engine import (
    BatchItem,
    Engine,
    JobFilter,
    JobInvalid,
    JobQueueError,
    JobStatus,
    Problem,
    SubmitResult,
    to_mermaid,
)
from schemas.api import (
    AttemptList,
    BatchAnswer,
    BatchRequest,
    Graph,
    InstanceAttemptList,
    InstancePage,
    JobDetail,
    JobDocument,
    JobPage,
    JobResult,
    JobState,
    SubmitAnswer,
    ValidationAnswer,
)
from schemas.jobs import parse_job_document

router = APIRouter(tags=["jobs"], default_response_class=FastJSONResponse)


def _prefix(request: Request) -> str:
    """The mount the request came through: ``/api/v1`` or the seed's unversioned paths."""
    return "/api/v1" if request.scope["path"].startswith("/api/v1/") else ""


def _epoch(value: datetime | None) -> float | None:
    """A time without a zone is UTC, as everywhere in the API."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _is_single_call(document: Any) -> bool:
    return isinstance(document, dict) and "tasks" not in document


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 256},
    "description": "Within 24 h, the same key with the same document answers the first job "
    "(`Idempotent-Replayed: true`); with a different document, 422 `idempotency_key_reused`.",
}
_JOB_BODY = request_body(JobDocument, "A job document, as JSON or YAML.")


@router.post(
    "/jobs",
    status_code=201,
    summary="Submit a job (single call or DAG)",
    description="Validates the job document (every problem is reported at once, with its "
    "location) and stores the job. The 201 is sent once the job is committed.",
    openapi_extra={**_JOB_BODY, "parameters": [_IDEMPOTENCY_KEY]},
    responses={
        **answers(
            201,
            SubmitAnswer,
            "Created",
            *BODY_ERRORS,
            headers={"Location": {"description": "the job's URL", "schema": {"type": "string"}}},
        ),
        200: {
            "model": SubmitAnswer,
            "description": "Replayed: the job an earlier request with this `Idempotency-Key` "
            "and the same document created",
            "headers": {
                "Location": {"description": "the job's URL", "schema": {"type": "string"}},
                "Idempotent-Replayed": {"description": "`true`", "schema": {"type": "string"}},
            },
        },
    },
)
async def submit_job(request: Request) -> Response:
    # The hot path (also served by the plain Starlette route of api.main): no dependency
    # injection, since FastAPI's resolution is measurable per request.
    engine: Engine = request.app.state.engine
    settings: Settings = request.app.state.settings
    principal = await authenticate(request)
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 256:
        raise JobInvalid(
            [Problem(code="invalid_header", message="Idempotency-Key must be 1-256 characters")]
        )
    document = await read_document(request, settings)
    spec = parse_job_document(document)
    result = await engine.submit(
        spec,
        single_call=_is_single_call(document),
        owner=principal.owner,
        idempotency_key=idempotency_key,
        document=document,
        by=actor_of(request, principal),
    )
    body: dict[str, Any] = {"job_id": result.job_id, "status": result.status}
    if result.warnings:
        body["warnings"] = result.warnings
    headers = {
        "Location": f"{request.scope.get('root_path', '')}{_prefix(request)}/jobs/{result.job_id}"
    }
    if result.existing:
        headers["Idempotent-Replayed"] = "true"
    return FastJSONResponse(body, status_code=200 if result.existing else 201, headers=headers)


MAX_BATCH = 1000


def _batch_item(index: int, raw: Any) -> BatchItem | dict[str, Any]:
    """An item is a job document, or ``{"document": ..., "idempotency_key": ...}``."""
    document, key = raw, None
    if isinstance(raw, dict) and "document" in raw:
        document, key = raw.get("document"), raw.get("idempotency_key")
        if key is not None and not (isinstance(key, str) and 0 < len(key) <= 256):
            return _item_error(index, 422, "invalid_header", "idempotency_key: 1-256 characters")
    try:
        spec = parse_job_document(document)
    except ValidationError as exc:
        problems = validation_problems(list(exc.errors(include_url=False)))
        return {"index": index, "status_code": 422, "error": _report(problems, [])}
    return BatchItem(
        spec=spec, single_call=_is_single_call(document), idempotency_key=key, document=document
    )


def _report(errors: list[Any], warnings: list[Any]) -> dict[str, Any]:
    return {"code": "invalid_job", "errors": errors, "warnings": warnings}


def _item_error(index: int, status: int, code: str, message: str) -> dict[str, Any]:
    return {"index": index, "status_code": status, "error": {"code": code, "message": message}}


def _item_result(index: int, result: SubmitResult | JobQueueError) -> dict[str, Any]:
    if isinstance(result, SubmitResult):
        item: dict[str, Any] = {"index": index, "status_code": 200 if result.existing else 201}
        item["job_id"] = result.job_id
        item |= {"status": result.status, "existing": result.existing}
        return item | ({"warnings": result.warnings} if result.warnings else {})
    if isinstance(result, JobInvalid):
        errors = [p.to_dict() for p in result.errors]
        warnings = [p.to_dict() for p in result.warnings]
        return {"index": index, "status_code": 422, "error": _report(errors, warnings)}
    status, code = status_of(result)
    return _item_error(index, status, code, str(result))


@router.post(
    "/jobs/batch",
    summary="Submit up to 1,000 jobs in one request",
    description="Each item is validated and accepted or refused on its own, by the rules of "
    "`POST /jobs`; the accepted ones are committed together. An item may carry its own "
    '`Idempotency-Key` as `{"document": ..., "idempotency_key": ...}`. The answer has one '
    "entry per item, in order. A body that is not a list of 1 to 1,000 jobs is refused as a "
    "whole (422 at `/jobs`).",
    openapi_extra=request_body(BatchRequest, '`{"jobs": [...]}`, as JSON or YAML.'),
    responses=answers(200, BatchAnswer, "One entry per item, in order", *BODY_ERRORS),
)
async def submit_batch(
    request: Request, engine: EngineDep, settings: SettingsDep, principal: PrincipalDep
) -> Any:
    envelope = await read_document(request, settings)
    jobs = envelope.get("jobs") if isinstance(envelope, dict) else None
    if not isinstance(jobs, list) or not 0 < len(jobs) <= MAX_BATCH or len(envelope) != 1:
        raise JobInvalid(
            [
                Problem(
                    code="invalid_batch",
                    location="/jobs",
                    message=f'send {{"jobs": [job, ...]}} with 1 to {MAX_BATCH} jobs',
                )
            ]
        )
    parsed = [_batch_item(i, raw) for i, raw in enumerate(jobs)]
    ready = [(i, p) for i, p in enumerate(parsed) if isinstance(p, BatchItem)]
    outcomes = await engine.submit_many(
        [p for _, p in ready], owner=principal.owner, by=actor_of(request, principal)
    )
    items: list[dict[str, Any]] = [p for p in parsed if isinstance(p, dict)]
    items += [_item_result(i, r) for (i, _), r in zip(ready, outcomes, strict=True)]
    return {"items": sorted(items, key=lambda item: item["index"])}


@router.post(
    "/jobs/validate",
    summary="Run every creation-time check; create nothing",
    description="Takes the same body as `POST /jobs`. A valid document answers 200 with its "
    "warnings; an invalid one the same 422 report as `POST /jobs`.",
    openapi_extra=_JOB_BODY,
    responses=answers(200, ValidationAnswer, "The document is valid", *BODY_ERRORS),
)
async def validate_job(request: Request, engine: EngineDep, settings: SettingsDep) -> Any:
    document = await read_document(request, settings)
    validated = await engine.validate(
        parse_job_document(document), single_call=_is_single_call(document)
    )
    return {"valid": True, "warnings": [w.to_dict() for w in validated.warnings]}


@router.get(
    "/jobs",
    summary="List jobs, newest first, with filters and cursor paging",
    description="Jobs newest first (by creation time, then id). Pass `next_cursor` back as "
    "`cursor`, with the same filters, for the next page. Jobs past their TTL are not listed.",
    responses=answers(200, JobPage, "A page of jobs", 422),
)
async def list_jobs(
    engine: EngineDep,
    principal: PrincipalDep,
    status: JobStatus | None = None,
    tag: Annotated[str | None, Query(max_length=128)] = None,
    name: Annotated[str | None, Query(max_length=256)] = None,
    workflow: Annotated[str | None, Query(max_length=128)] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> Any:
    flt = JobFilter(
        status=status.value if status else None,
        tag=tag,
        name=name,
        workflow=workflow,
        created_after=_epoch(created_after),
        created_before=_epoch(created_before),
        owner=principal.scope,
    )
    try:
        return await engine.list_jobs(flt, limit=limit, cursor=cursor)
    except ValueError as exc:
        return FastJSONResponse(
            {"detail": {"code": "invalid_request", "message": str(exc), "location": "/cursor"}},
            422,
        )


@router.get(
    "/jobs/{job_id}",
    summary="Job detail with its tasks",
    responses=answers(200, JobDetail, "The job and its tasks", 404),
)
async def get_job(job_id: str, engine: EngineDep, principal: PrincipalDep) -> Any:
    return await engine.get_job(job_id, owner=principal.scope)


@router.get(
    "/jobs/{job_id}/result",
    summary="Responses: the sink's at top level, every task's",
    description="The stored responses and errors. Before the job ends, the current status and "
    "whatever is stored so far.",
    responses=answers(200, JobResult, "The job's responses", 404),
)
async def get_result(job_id: str, engine: EngineDep, principal: PrincipalDep) -> Any:
    return await engine.get_result(job_id, owner=principal.scope)


@router.get(
    "/jobs/{job_id}/tasks/{task}/attempts",
    summary="Every attempt of one task",
    responses=answers(200, AttemptList, "The task's attempts, oldest first", 404),
)
async def get_attempts(job_id: str, task: str, engine: EngineDep, principal: PrincipalDep) -> Any:
    attempts = await engine.get_attempts(job_id, task, owner=principal.scope)
    return {"job_id": job_id, "task": task, "attempts": attempts}


@router.get(
    "/jobs/{job_id}/tasks/{task}/instances",
    summary="The instances of a for_each task, in item order, a page at a time",
    description="Pass `next_start` back as `start` for the next page.",
    responses=answers(200, InstancePage, "A page of instances", 404, 422),
)
async def get_instances(
    job_id: str,
    task: str,
    engine: EngineDep,
    principal: PrincipalDep,
    start: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return await engine.get_instances(job_id, task, start=start, limit=limit, owner=principal.scope)


@router.get(
    "/jobs/{job_id}/tasks/{task}/instances/{index}/attempts",
    summary="Every attempt of one instance of a for_each task",
    responses=answers(200, InstanceAttemptList, "The instance's attempts, oldest first", 404),
)
async def get_instance_attempts(
    job_id: str, task: str, index: int, engine: EngineDep, principal: PrincipalDep
) -> Any:
    attempts = await engine.get_instance_attempts(job_id, task, index, owner=principal.scope)
    return {"job_id": job_id, "task": task, "index": index, "attempts": attempts}


@router.get(
    "/jobs/{job_id}/graph",
    summary="Nodes, edges and statuses; ?format=mermaid",
    description="JSON by default; `?format=mermaid` answers a Mermaid flowchart as text/plain.",
    responses=answers(
        200,
        Graph,
        "The job's graph",
        404,
        422,
        content={"text/plain": {"schema": {"type": "string"}}},
    ),
)
async def get_graph(
    job_id: str,
    engine: EngineDep,
    principal: PrincipalDep,
    format: Annotated[str, Query(pattern="^(json|mermaid)$")] = "json",
) -> Any:
    graph = await engine.get_graph(job_id, owner=principal.scope)
    if format == "mermaid":
        nodes = [(n["name"], n["status"]) for n in graph["nodes"]]
        edges = [(e["from"], e["to"]) for e in graph["edges"]]
        return PlainTextResponse(to_mermaid(nodes, edges))
    return graph


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Cancel: queued tasks at once, running calls interrupted",
    responses=answers(200, JobState, "Canceled", 404, 409),
)
async def cancel_job(
    job_id: str, engine: EngineDep, principal: PrincipalDep, actor: ActorDep
) -> Any:
    return {
        "job_id": job_id,
        "status": await engine.cancel(job_id, owner=principal.scope, by=actor),
    }


@router.post(
    "/jobs/{job_id}/retry",
    summary="Re-run failed, skipped and canceled tasks",
    description="Only a `failed` or `canceled` job retries; its succeeded tasks keep their "
    "outputs.",
    responses=answers(200, JobState, "The job is running again", 404, 409),
)
async def retry_job(
    job_id: str, engine: EngineDep, principal: PrincipalDep, actor: ActorDep
) -> Any:
    status = await engine.retry(job_id, owner=principal.scope, by=actor)
    return {"job_id": job_id, "status": status}


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an ended job with its tasks, attempts and stored responses",
    description="Every read of the job answers 404 afterwards. A job that is queued or running "
    "is refused with 409: cancel it first.",
    responses=answers(204, None, "Deleted", 404, 409),
)
async def delete_job(
    job_id: str, engine: EngineDep, principal: PrincipalDep, actor: ActorDep
) -> Response:
    await engine.delete(job_id, owner=principal.scope, by=actor)
    return Response(status_code=204)
