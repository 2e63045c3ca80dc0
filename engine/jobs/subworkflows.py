"""What a job that runs a stored definition as a sub-workflow needs to know of it at creation
(pure): the version, the params its callers must give, and the schema of its result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.dag import build_graph, sinks
from schemas.jobs import JobSpec

Schema = dict[str, Any] | bool | None


@dataclass(frozen=True, kw_only=True)
class DefinitionInfo:
    name: str
    version: int
    #: the definition's ``params_schema`` less the ``required`` names it has defaults for
    params_schema: Schema
    #: the output schema of its only sink, or an object of its sinks' outputs by name
    result_schema: Schema


def definition_info(row: Any, masters: Mapping[str, tuple[Schema, Schema]]) -> DefinitionInfo:
    """``row``: a stored definition version; ``masters``: (input, output) schema by name."""
    spec = JobSpec.model_validate(row.document)
    return DefinitionInfo(
        name=row.name,
        version=row.version,
        params_schema=_callers_schema(row.params_schema, spec.params),
        result_schema=result_schema(spec, masters),
    )


def master_names(document: dict[str, Any]) -> set[str]:
    """The stored InterfaceMasters a definition's tasks name."""
    spec = JobSpec.model_validate(document)
    return {t.interface for t in spec.tasks if t.interface and t.interface not in spec.interfaces}


def _callers_schema(schema: Schema, defaults: Mapping[str, Any]) -> Schema:
    if not isinstance(schema, dict) or not isinstance(schema.get("required"), list):
        return schema
    return {**schema, "required": [n for n in schema["required"] if n not in defaults]}


def result_schema(spec: JobSpec, masters: Mapping[str, tuple[Schema, Schema]]) -> Schema:
    upstream = build_graph(spec).upstream
    names = [t.name for t in spec.tasks]
    by_name = {t.name: t for t in spec.tasks}
    outputs: dict[str, Schema] = {}
    for name in sinks(names, upstream):
        task = by_name[name]
        schema: Schema = task.output_schema
        if schema is None and task.interface:
            inline = spec.interfaces.get(task.interface)
            if inline is not None:
                schema = inline.output_schema
            elif task.interface in masters:
                schema = masters[task.interface][1]
        if task.for_each and schema is not None:
            schema = {"type": "array", "items": schema}
        outputs[name] = schema
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    if any(s is None for s in outputs.values()):
        return {"type": "object", "required": sorted(outputs)}
    return {"type": "object", "properties": outputs, "required": sorted(outputs)}
