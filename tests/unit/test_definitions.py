"""Workflow definitions without I/O: params typed by ``params_schema``, parsing, run params."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from engine.errors import JobInvalid
from engine.jobs.definitions import parse_definition, run_spec
from engine.jobs.validation import validate_job
from schemas.jobs import JobSpec
from schemas.workflows import WorkflowRun

PARAMS = {
    "type": "object",
    "properties": {
        "query": {"type": "string"},
        "limit": {"type": "integer"},
        "filters": {"type": "object", "properties": {"lang": {"type": "string"}}},
    },
    "required": ["query"],
}


def job(*tasks: dict[str, Any]) -> JobSpec:
    return JobSpec.model_validate({"tasks": list(tasks)})


def errors(spec: JobSpec, params_schema: Any = PARAMS) -> list[dict[str, Any]]:
    with pytest.raises(JobInvalid) as caught:
        validate_job(spec, {}, params_schema=params_schema)
    return [p.to_dict() for p in caught.value.errors]


def test_an_undeclared_param_is_an_error_at_its_template() -> None:
    spec = job({"name": "s", "url": "https://a.example/?q={{ params.qurey }}"})
    (error,) = errors(spec)
    assert error["code"] == "unknown_param"
    assert error["location"] == "/tasks/0/url"
    assert error["actual"] == "params.qurey"
    assert error["expected"] == ["filters", "limit", "query"]


def test_nested_params_paths_are_followed() -> None:
    spec = job(
        {
            "name": "s",
            "url": "https://a.example/",
            "headers": {"X-Lang": "{{ params.filters.lang }}"},
            "body": {"x": "{{ params.filters.country }}"},
        }
    )
    (error,) = errors(spec)
    assert error["location"] == "/tasks/0/body/x"
    assert error["expected"] == ["lang"]


def test_a_param_whose_type_does_not_fit_the_input_schema_is_an_error() -> None:
    spec = job(
        {
            "name": "s",
            "method": "POST",
            "url": "https://a.example/",
            "body": {"n": "{{ params.limit }}"},
            "input_schema": {"type": "object", "properties": {"n": {"type": "string"}}},
        }
    )
    (error,) = errors(spec)
    assert error["code"] == "incompatible_types"
    assert error["edge"] == "params -> s"


def test_declared_params_and_when_conditions_pass() -> None:
    spec = job(
        {
            "name": "s",
            "url": "https://a.example/{{ params.query }}",
            "when": "params.limit > 3",
        }
    )
    assert validate_job(spec, {}, params_schema=PARAMS).order == ("s",)


def test_a_when_condition_reading_an_undeclared_param_is_an_error() -> None:
    spec = job({"name": "s", "url": "https://a.example/", "when": "params.limt > 3"})
    (error,) = errors(spec)
    assert error["location"] == "/tasks/0/when"


def test_without_a_params_schema_params_are_not_typed() -> None:
    spec = job({"name": "s", "url": "https://a.example/{{ params.anything }}"})
    assert validate_job(spec, {}).order == ("s",)


def test_an_invalid_params_schema_is_reported_where_it_is() -> None:
    spec = job({"name": "s", "url": "https://a.example/"})
    (error,) = errors(spec, {"type": "strin"})
    assert error["code"] == "invalid_schema"
    assert error["location"].startswith("/params_schema")


def test_parse_sets_the_name_and_a_digest_that_ignores_key_order() -> None:
    doc = {"description": "d", "tasks": [{"name": "s", "url": "https://a.example/"}]}
    first = parse_definition("wf", doc)
    again = parse_definition("wf", dict(reversed(list(doc.items()))))
    assert first.spec.name == "wf" and first.document["name"] == "wf"
    assert "description" not in first.document
    assert first.digest == again.digest
    assert parse_definition("wf", {**doc, "description": "e"}).digest != first.digest


def test_run_params_go_over_the_defaults_and_are_checked() -> None:
    row = SimpleNamespace(
        document={"name": "wf", "params": {"limit": 5}, "tags": ["a"], "tasks": []},
        params_schema=PARAMS,
    )
    row.document["tasks"] = [{"name": "s", "url": "https://a.example/"}]
    spec = run_spec(row, WorkflowRun(params={"query": "cats"}, tags=["b"], priority=3))
    assert spec.params == {"limit": 5, "query": "cats"}
    assert spec.tags == ["a", "b"] and spec.priority == 3
    with pytest.raises(JobInvalid) as caught:
        run_spec(row, WorkflowRun(params={"limit": "many"}))
    found = {(p.code, p.location) for p in caught.value.errors}
    assert found == {("invalid_params", "/params"), ("invalid_params", "/params/limit")}
