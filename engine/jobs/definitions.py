"""Workflow definitions: from a stored or submitted definition document to the job it starts.

Pure functions; the engine facade (:mod:`engine.workflows`) does the I/O around them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from engine.contracts import validate_instance
from engine.errors import JobInvalid, Problem
from schemas.jobs import JobSpec
from schemas.workflows import WorkflowDefinition, WorkflowRun, split_definition


@dataclass(frozen=True, kw_only=True)
class Definition:
    """A parsed definition document."""

    name: str
    spec: JobSpec
    #: the job document that is stored (the definition's own fields set apart)
    document: dict[str, Any]
    description: str | None
    params_schema: Any
    digest: str


def parse_definition(name: str, document: Any) -> Definition:
    """Check a definition document's fields (pydantic ``ValidationError`` with locations into
    the document) and its ``name`` (which must be the definition's when given)."""
    parsed = WorkflowDefinition.model_validate(document)
    if parsed.name is not None and parsed.name != name:
        raise JobInvalid(
            [
                Problem(
                    code="name_mismatch",
                    location="/name",
                    message=f"the document is named {parsed.name!r} but is stored as {name!r}:"
                    " leave `name` out or make them equal",
                    expected=name,
                    actual=parsed.name,
                )
            ]
        )
    job_document, own = split_definition(document)
    job_document["name"] = name
    spec = JobSpec.model_validate(job_document)
    digest = hashlib.sha256(
        orjson.dumps({"document": job_document, **own}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    return Definition(
        name=name,
        spec=spec,
        document=job_document,
        description=parsed.description,
        params_schema=parsed.params_schema,
        digest=digest,
    )


def run_spec(row: Any, run: WorkflowRun) -> JobSpec:
    """The job a run of a stored definition version starts: the run's params laid over the
    definition's defaults and checked against ``params_schema`` (``JobInvalid`` with every
    violation under ``/params``); the run's tags added, its priority and time used."""
    document = dict(row.document)
    params = {**(document.get("params") or {}), **run.params}
    if row.params_schema is not None:
        check_params(row.params_schema, params)
    document["params"] = params
    document["tags"] = [*(document.get("tags") or []), *run.tags]
    if run.priority is not None:
        document["priority"] = run.priority
    if run.scheduled_at is not None:
        document["scheduled_at"] = run.scheduled_at
    return JobSpec.model_validate(document)


def find_circle(name: str, uses: list[str], graph: Mapping[str, list[str]]) -> list[str]:
    """The circle ``name -> ... -> name`` that saving ``name`` with these ``uses`` would close
    in the graph of which definitions run which (empty when there is none)."""
    edges = {**graph, name: list(uses)}
    path = [name]
    seen: set[str] = set()

    def walk(current: str) -> bool:
        for nxt in edges.get(current, ()):
            if nxt == name:
                path.append(nxt)
                return True
            if nxt in seen:
                continue
            seen.add(nxt)
            path.append(nxt)
            if walk(nxt):
                return True
            path.pop()
        return False

    return path if walk(name) else []


def check_params(params_schema: Any, params: Mapping[str, Any]) -> None:
    found = validate_instance(params_schema, dict(params))
    if found:
        raise JobInvalid(
            [
                Problem(
                    code="invalid_params",
                    location=f"/params{v['pointer']}",
                    message=f"params{v['pointer'] or ''}: {v['message']} (params_schema"
                    f" keyword {v['keyword']!r})",
                    expected=v["keyword"],
                )
                for v in found
            ]
        )
