"""Creation-time checks of for_each: the source is an array, ``item`` is typed by its items,
downstream tasks see an array of the per-item output."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import JobInvalid
from engine.jobs.validation import validate_job
from schemas.jobs import JobSpec

SEARCH_OUT = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "title": {"type": "string"}},
                "required": ["id"],
            },
        },
    },
}
ENRICH_OUT = {"type": "object", "properties": {"score": {"type": "number"}}}


def job(each: dict[str, Any], *more: dict[str, Any]) -> JobSpec:
    search = {"name": "search", "url": "https://a.example/", "output_schema": SEARCH_OUT}
    base = {"name": "each", "method": "POST", "url": "https://a.example/e", **each}
    return JobSpec.model_validate({"tasks": [search, base, *more]})


def errors(spec: JobSpec) -> list[dict[str, Any]]:
    with pytest.raises(JobInvalid) as caught:
        validate_job(spec, {})
    return [p.to_dict() for p in caught.value.errors]


def test_a_source_that_is_not_an_array_is_an_error() -> None:
    (error,) = errors(job({"for_each": "{{ tasks.search.output.count }}"}))
    assert error["code"] == "for_each_not_array"
    assert error["location"] == "/tasks/1/for_each"
    assert error["edge"] == "search -> each"


def test_an_unknown_source_path_is_an_unknown_output_path() -> None:
    (error,) = errors(job({"for_each": "{{ tasks.search.output.resuls }}"}))
    assert error["code"] == "unknown_output_path"
    assert error["location"] == "/tasks/1/for_each"


def test_item_is_typed_by_the_items_schema() -> None:
    spec = job({"for_each": "{{ tasks.search.output.results }}", "body": {"x": "{{ item.idd }}"}})
    (error,) = errors(spec)
    assert error["code"] == "unknown_output_path"
    assert error["location"] == "/tasks/1/body/x"
    assert error["expected"] == ["id", "title"]


def test_item_types_meet_the_input_schema() -> None:
    spec = job(
        {
            "for_each": "{{ tasks.search.output.results }}",
            "body": {"id": "{{ item.title }}"},
            "input_schema": {"type": "object", "properties": {"id": {"type": "integer"}}},
        }
    )
    (error,) = errors(spec)
    assert error["code"] == "incompatible_types"
    assert error["location"] == "/tasks/1/body/id"


def test_declared_item_paths_pass_and_the_source_is_an_edge() -> None:
    spec = job({"for_each": "{{ tasks.search.output.results }}", "body": {"id": "{{ item.id }}"}})
    validated = validate_job(spec, {})
    assert validated.upstream["each"] == ("search",)


def test_downstream_sees_an_array_of_the_per_item_output() -> None:
    after = {
        "name": "after",
        "method": "POST",
        "url": "https://a.example/a",
        "body": {
            "first": "{{ tasks.each.output[0].score }}",
            "bad": "{{ tasks.each.output.score }}",
        },
    }
    spec = job(
        {"for_each": "{{ tasks.search.output.results }}", "output_schema": ENRICH_OUT}, after
    )
    (error,) = errors(spec)
    assert error["code"] == "unknown_output_path"
    assert error["location"] == "/tasks/2/body/bad"


def test_item_outside_a_for_each_task_is_an_error() -> None:
    (error,) = errors(job({"body": {"x": "{{ item }}"}}))
    assert error["code"] == "item_outside_for_each"
    assert error["location"] == "/tasks/1/body/x"


def test_a_for_each_template_error_is_reported_at_for_each() -> None:
    (error,) = errors(job({"for_each": "{{ tasks.search.output.results "}))
    assert error["code"] == "template_syntax"
    assert error["location"] == "/tasks/1/for_each"


def test_a_loop_variable_named_item_is_the_templates_own() -> None:
    body = {"x": "{% for item in tasks.search.output.results %}{{ item.id }}{% endfor %}"}
    spec = job({"body": body})
    assert validate_job(spec, {}).order == ("search", "each")
