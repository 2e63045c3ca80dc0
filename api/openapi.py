"""What ``/openapi.json`` says about routes that read their body by hand, and about 422s.

Those routes take only the ``Request`` (see ``api/body.py``), so FastAPI cannot infer a request
schema from their signature: :func:`request_body` declares it through ``openapi_extra``, and
:func:`install` adds the referenced schemas to the document's components. :func:`answers` lists
an operation's documented statuses with their models. FastAPI documents a 422 of its own shape
for every route with parameters; ``api/errors.py`` answers those in ours, so :func:`install`
documents ours instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.auth import OPEN_PATHS
from schemas.api import BatchRequest, ErrorAnswer, InvalidReport, JobDocument
from schemas.callbacks import CallbackReport
from schemas.interfaces import InterfaceMasterIn, InterfaceMasterUpdate
from schemas.schedules import ScheduleIn, ScheduleUpdate
from schemas.security import KeyCreate
from schemas.workflows import WorkflowDefinition, WorkflowRun

BODY_MEDIA_TYPES = ("application/json", "application/yaml")
_REF_TEMPLATE = "#/components/schemas/{model}"
_REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    JobDocument,
    BatchRequest,
    InterfaceMasterIn,
    InterfaceMasterUpdate,
    WorkflowDefinition,
    WorkflowRun,
    ScheduleIn,
    ScheduleUpdate,
    KeyCreate,
    CallbackReport,
)
_REFS, _DEFINITIONS = models_json_schema(
    [(model, "validation") for model in _REQUEST_MODELS], ref_template=_REF_TEMPLATE
)

ERRORS: dict[int, str] = {
    401: "No API key, or an unknown or revoked one (only when keys are configured)",
    403: "The API key is not an admin key",
    404: "Unknown job, task, InterfaceMaster or workflow, or a job past its TTL",
    408: "The request body did not arrive within `JOBQUEUE_BODY_READ_TIMEOUT`",
    409: "The job or InterfaceMaster is in a state that does not allow this",
    413: "The request body is larger than `JOBQUEUE_MAX_REQUEST_BYTES`",
    415: "A `Content-Type` other than JSON or YAML",
    422: "Invalid request: every problem at once, each with its location",
}
#: the statuses every route that reads a body may answer besides its own
BODY_ERRORS = (408, 413, 415, 422)


def request_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON or YAML body of this model's schema."""
    ref = _REFS[(model, "validation")]
    content = {media: {"schema": dict(ref)} for media in BODY_MEDIA_TYPES}
    return {"requestBody": {"required": True, "description": description, "content": content}}


def answers(
    status: int,
    model: type[BaseModel] | None,
    description: str,
    *errors: int,
    **extra: Any,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: its success answer, then the error statuses it documents."""
    success: dict[str, Any] = {"description": description, **extra}
    if model is not None:
        success["model"] = model
    documented: dict[int | str, dict[str, Any]] = {status: success}
    for code in errors:
        documented[code] = {
            "model": InvalidReport if code == 422 else ErrorAnswer,
            "description": ERRORS[code],
        }
    return documented


def install(app: FastAPI) -> None:
    """Add the request-body schemas to the components of the app's OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in _DEFINITIONS.get("$defs", {}).items():
            if schemas.setdefault(name, schema) != schema:
                raise RuntimeError(f"two different OpenAPI schemas are named {name!r}")
        _own_422(document)
        _auth_401(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _own_422(document: dict[str, Any]) -> None:
    """Replace FastAPI's 422 (``HTTPValidationError``) by the report the app really answers."""
    fastapi_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
    ours = {"$ref": f"#/components/schemas/{InvalidReport.__name__}"}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422", {})
            json_content = response.get("content", {}).get("application/json", {})
            if json_content.get("schema") == fastapi_422:
                response["description"] = ERRORS[422]
                json_content["schema"] = ours
    schemas = document["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _auth_401(document: dict[str, Any]) -> None:
    """Every operation but those of the open paths may answer 401, and says how to send a key."""
    schemes = document["components"].setdefault("securitySchemes", {})
    schemes["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`JOBQUEUE_API_KEYS`, `jobqueue keys create`); only needed "
        "when keys are configured",
    }
    error = {"$ref": f"#/components/schemas/{ErrorAnswer.__name__}"}
    for path, operations in document.get("paths", {}).items():
        if path in OPEN_PATHS:
            continue
        for operation in operations.values():
            operation.setdefault("security", [{"bearer": []}, {}])
            operation.setdefault("responses", {}).setdefault(
                "401",
                {
                    "description": ERRORS[401],
                    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": error}},
                },
            )
