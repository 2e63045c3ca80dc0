"""YAML workflow files -> the job document the REST API takes, and where each value sits.

::

    load_yaml_document(text, source=...) -> LoadedDocument(document, marks)
    load_yaml_bytes(raw, source=...)     -> LoadedDocument    strict UTF-8, then as above
    parse_yaml_body(raw)                 -> document          a body sent as application/yaml
    apply_params(document, {"n": "3"})   -> document          --param n=3 sets params.n = 3
    parse_workflow(loaded)               -> JobSpec           pydantic errors -> JobInvalid, lines
    attach_marks(problems, marks, ...)   -> problems          engine report -> file lines
    load_workflow_file(path, params=...) -> (JobSpec, LoadedDocument)

Reading YAML lives in :mod:`engine.jobs.yaml_reader` (which plain data gets through, and the
marks: the 1-based line and column of every value, by JSON pointer); this module turns the
document into the job model and re-exports the reading functions.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import ScalarNode

from engine.errors import JobInvalid, Problem
from engine.jobs.yaml_reader import (
    _CORE,
    _LOADER,
    _SCALAR_TAGS,
    MAX_VALUES,
    LoadedDocument,
    Mark,
    WorkflowFileError,
    load_yaml_bytes,
    load_yaml_document,
    parse_yaml_body,
)
from engine.jsonpointer import join_pointer
from schemas.jobs import InlineInterface, JobSpec, SingleCallSpec, TaskSpec, parse_job_document
from schemas.workflows import split_definition

__all__ = [
    "MAX_VALUES",
    "LoadedDocument",
    "Mark",
    "WorkflowFileError",
    "apply_params",
    "attach_marks",
    "load_workflow_file",
    "load_yaml_bytes",
    "load_yaml_document",
    "mark_for",
    "parse_workflow",
    "parse_yaml_body",
]

# --------------------------------------------------------------------------- CLI parameters


def apply_params(document: Any, overrides: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``document`` whose ``params`` has each ``--param key=value`` set.

    Values are read as YAML scalars (``n=3`` -> 3, ``on=true`` -> True, ``q=cats`` -> "cats");
    anything that is not a plain scalar stays the string that was typed.
    """
    source = "--param"
    if not isinstance(document, dict) or "tasks" not in document:
        reason = "--param needs the DAG form (`tasks:`); the single-call form has no job params"
        raise WorkflowFileError(reason, source=source)
    result = copy.deepcopy(document)
    params = result.setdefault("params", {})
    if params is None:
        params = result["params"] = {}
    if not isinstance(params, dict):
        raise WorkflowFileError("`params` of the workflow is not a mapping", source=source)
    for key, text in overrides.items():
        if not key:
            raise WorkflowFileError(f"empty name in --param ={text}", source=source)
        params[key] = _scalar_value(text)
    return result


def _scalar_value(text: str) -> Any:
    if not text.strip():
        return text
    try:
        node = yaml.compose(text, Loader=_LOADER)
        if not isinstance(node, ScalarNode) or node.tag not in _SCALAR_TAGS - {_CORE + "timestamp"}:
            return text
        value = yaml.constructor.SafeConstructor().construct_object(node)
    except (yaml.YAMLError, ValueError):
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text
    return value


# --------------------------------------------------------------------------- the job model


def load_workflow_file(
    path: str | Path, *, params: Mapping[str, str] | None = None
) -> tuple[JobSpec, LoadedDocument]:
    """Read, parse and validate one workflow file (``params``: the CLI's ``--param`` values).

    Raises :class:`WorkflowFileError` (unreadable / not plain-data YAML) or
    :class:`~engine.errors.JobInvalid` (the document does not fit the job model).
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise WorkflowFileError(f"cannot read: {exc.strerror or exc}", source=source) from None
    loaded = load_yaml_bytes(raw, source=source)
    if isinstance(loaded.document, dict) and "schedule" in loaded.document:
        # a scheduled workflow's `schedule:` is for `jobqueue schedules apply`, not the job
        rest = {k: v for k, v in loaded.document.items() if k != "schedule"}
        loaded = replace(loaded, document=rest)
    if params:
        loaded = replace(loaded, document=apply_params(loaded.document, params))
    return parse_workflow(loaded), loaded


def parse_workflow(loaded: LoadedDocument) -> JobSpec:
    """Validate the document into a :class:`JobSpec`; every field error at once, with lines."""
    document = loaded.document
    if isinstance(document, dict) and "tasks" in document:
        # a workflow definition file runs as the job it describes
        document, _ = split_definition(document)
    try:
        return parse_job_document(document)
    except ValidationError as exc:
        problems = [_field_problem(error, loaded) for error in exc.errors(include_url=False)]
        raise JobInvalid(errors=problems) from exc


def attach_marks(
    problems: Iterable[Problem], marks: Mapping[str, Mark], *, single_call: bool
) -> list[Problem]:
    """The problems with ``line``/``column`` taken from ``marks`` (nearest marked ancestor).

    With ``single_call`` the pointers are relative to the single-call document; a pointer still
    written against the normalised job (``/tasks/0/...``) is translated back.
    """
    result = []
    for problem in problems:
        if problem.line is not None:
            result.append(problem)
            continue
        pointer = problem.location
        if single_call and pointer not in marks:
            pointer = _single_call_pointer(pointer)
        mark = mark_for(marks, pointer)
        result.append(problem if mark is None else replace(problem, line=mark[0], column=mark[1]))
    return result


def mark_for(marks: Mapping[str, Mark], pointer: str) -> Mark | None:
    """The mark of ``pointer`` or of its nearest ancestor that has one."""
    while pointer not in marks:
        if not pointer:
            return None
        pointer = pointer.rpartition("/")[0]
    return marks[pointer]


def _single_call_pointer(pointer: str) -> str:
    prefix = "/tasks/0"
    if pointer != prefix and not pointer.startswith(prefix + "/"):
        return pointer
    rest = pointer[len(prefix) :]
    if rest == "/ttl_seconds" or rest.startswith("/ttl_seconds/"):
        return "/task_ttl_seconds" + rest[len("/ttl_seconds") :]
    return rest


def _field_problem(error: Mapping[str, Any], loaded: LoadedDocument) -> Problem:
    parts = _loc_parts(loaded.document, error["loc"])
    pointer = join_pointer(parts)
    mark = mark_for(loaded.marks, pointer)
    value = error.get("input")
    scalar = error["type"] != "missing" and isinstance(value, str | int | float | bool)
    return Problem(
        code="invalid_field",
        location=pointer,
        message=_field_message(error, parts, loaded.single_call),
        task=_task_name(loaded.document, parts),
        actual=value if scalar else None,
        line=mark[0] if mark else None,
        column=mark[1] if mark else None,
    )


def _loc_parts(document: Any, loc: Iterable[str | int]) -> list[str | int]:
    """Follow pydantic's ``loc`` through the document, dropping union-member labels."""
    parts: list[str | int] = []
    current = document
    items = list(loc)
    for index, part in enumerate(items):
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        elif index == len(items) - 1 and isinstance(current, dict):
            current = None  # a missing or unknown field: it names a key of this mapping
        else:
            continue
        parts.append(part)
    return parts


def _field_message(error: Mapping[str, Any], parts: list[str | int], single_call: bool) -> str:
    name = str(parts[-1]) if parts else ""
    if error["type"] == "extra_forbidden":
        known = _known_fields(parts[:-1], single_call)
        close = difflib.get_close_matches(name, known, n=1) if known else []
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {name!r}{hint}"
    if error["type"] == "missing":
        hint = ""
        if parts == ["url"] and single_call:
            hint = " (a job needs `tasks:`, or `method:` and `url:` for a single call)"
        return f"required field {name!r} is missing{hint}"
    return str(error["msg"]).removeprefix("Value error, ")


def _known_fields(parent: list[str | int], single_call: bool) -> list[str]:
    if not parent and single_call:
        return [*SingleCallSpec.model_fields, "tasks"]
    if not parent:
        return list(JobSpec.model_fields)
    if len(parent) == 2 and parent[0] == "tasks":
        return list(TaskSpec.model_fields)
    if len(parent) == 2 and parent[0] == "interfaces":
        return list(InlineInterface.model_fields)
    return []


def _task_name(document: Any, parts: list[str | int]) -> str | None:
    if len(parts) < 2 or parts[0] != "tasks" or not isinstance(parts[1], int):
        return None
    task = document["tasks"][parts[1]]
    name = task.get("name") if isinstance(task, dict) else None
    return name if isinstance(name, str) else None
