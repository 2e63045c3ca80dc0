"""Sub-workflow checks without I/O: params against the definition's params_schema, downstream
against its result schema, the result of several sinks, circles of definitions."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from engine.errors import JobInvalid
from engine.jobs.definitions import find_circle
from engine.jobs.subworkflows import DefinitionInfo, definition_info
from engine.jobs.validation import validate_job
from schemas.jobs import JobSpec

INFO = DefinitionInfo(
    name="enrich-one",
    version=2,
    params_schema={
        "type": "object",
        "properties": {"id": {"type": "integer"}},
        "required": ["id"],
    },
    result_schema={"type": "object", "properties": {"score": {"type": "number"}}},
)


def job(params: dict[str, Any], body: dict[str, Any]) -> JobSpec:
    return JobSpec.model_validate(
        {
            "tasks": [
                {"name": "child", "workflow": {"name": "enrich-one", "params": params}},
                {"name": "after", "method": "POST", "url": "https://a.example/", "body": body},
            ]
        }
    )


def problems(spec: JobSpec) -> set[tuple[str, str]]:
    with pytest.raises(JobInvalid) as caught:
        validate_job(spec, {}, workflows={("enrich-one", None): INFO})
    return {(p.code, p.location) for p in caught.value.errors}


def test_params_and_downstream_paths_are_checked() -> None:
    spec = job({"id": "x"}, {"s": "{{ tasks.child.output.scor }}"})
    assert problems(spec) == {
        ("invalid_input_literal", "/tasks/0/workflow/params/id"),
        ("unknown_output_path", "/tasks/1/body/s"),
    }


def test_a_missing_required_param_is_reported_at_the_params() -> None:
    assert problems(job({}, {})) == {("missing_input_property", "/tasks/0/workflow/params")}


def test_a_correct_call_validates_and_its_output_is_an_edge() -> None:
    spec = job({"id": 3}, {"s": "{{ tasks.child.output.score }}"})
    validated = validate_job(spec, {}, workflows={("enrich-one", None): INFO})
    assert validated.upstream["after"] == ("child",)


def test_an_unknown_definition_is_reported_at_its_name() -> None:
    with pytest.raises(JobInvalid) as caught:
        validate_job(job({"id": 3}, {}), {}, workflows={})
    (error,) = caught.value.errors
    assert (error.code, error.location) == ("unknown_workflow", "/tasks/0/workflow/name")


def test_the_result_of_several_sinks_is_an_object_by_sink_and_defaults_are_not_required() -> None:
    row = SimpleNamespace(
        name="two",
        version=1,
        params_schema={"type": "object", "required": ["a", "b"]},
        document={
            "params": {"b": 1},
            "tasks": [
                {"name": "x", "url": "https://a.example/", "output_schema": {"type": "integer"}},
                {"name": "y", "url": "https://a.example/", "output_schema": {"type": "string"}},
            ],
        },
    )
    info = definition_info(row, {})
    assert info.params_schema == {"type": "object", "required": ["a"]}
    assert info.result_schema == {
        "type": "object",
        "properties": {"x": {"type": "integer"}, "y": {"type": "string"}},
        "required": ["x", "y"],
    }


def test_circles_of_definitions_are_found() -> None:
    graph = {"b": ["c"], "c": ["a"]}
    assert find_circle("a", ["b"], graph) == ["a", "b", "c", "a"]
    assert find_circle("a", ["a"], {}) == ["a", "a"]
    assert find_circle("a", ["b"], {"b": ["c"]}) == []
    assert find_circle("d", ["b"], graph | {"a": ["b"]}) == []
