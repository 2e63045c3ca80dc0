"""The creation-time report (engine.jobs.validation): every problem at once, the schema snapshot."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from benchmarks.validate_large import build_document
from engine.errors import JobInvalid, Problem
from engine.jobs.validation import InterfaceSchemas, ValidatedJob, validate_job
from schemas.jobs import JobSpec, parse_job_document

SEARCH_OUT = {
    "type": "object",
    "properties": {
        "results": {"type": "array", "items": {"type": "integer"}},
        "count": {"type": "integer"},
        "label": {"type": "string"},
    },
    "required": ["results", "count"],
}
ENRICH_IN = {
    "type": "object",
    "properties": {
        "ids": {"type": "array", "items": {"type": "integer"}},
        "n": {"type": "integer"},
    },
    "required": ["ids"],
}
MASTERS = {
    "Search": InterfaceSchemas(output_schema=SEARCH_OUT),
    "Enrich": InterfaceSchemas(input_schema=ENRICH_IN, output_schema={"type": "object"}),
}


def spec_of(*tasks: dict[str, Any], **job: Any) -> JobSpec:
    doc = {**job, "tasks": [{"url": "http://api.local/x", **t} for t in tasks]}
    return parse_job_document(doc)


def search_and_enrich(**enrich: Any) -> JobSpec:
    return spec_of(
        {"name": "search", "interface": "Search"},
        {
            "name": "enrich",
            "interface": "Enrich",
            "body": {
                "ids": "{{ tasks.search.output.results }}",
                "n": "{{ tasks.search.output.count }}",
            },
            **enrich,
        },
    )


def invalid(spec: JobSpec, masters: Any = MASTERS, **kwargs: Any) -> JobInvalid:
    with pytest.raises(JobInvalid) as caught:
        validate_job(spec, masters, **kwargs)
    return caught.value


def where(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.code, p.location) for p in problems]


def test_valid_job() -> None:
    result = validate_job(search_and_enrich(), MASTERS)
    assert isinstance(result, ValidatedJob)
    assert result.upstream == {"search": (), "enrich": ("search",)}
    assert result.order == ("search", "enrich")
    assert result.schemas["search"] == MASTERS["Search"]
    assert result.schemas["enrich"] == MASTERS["Enrich"]
    assert result.warnings == []


def test_inline_schemas_override_the_master() -> None:
    own_input = {"type": "object"}
    result = validate_job(search_and_enrich(input_schema=own_input), MASTERS)
    assert result.schemas["enrich"] == InterfaceSchemas(
        input_schema=own_input, output_schema={"type": "object"}
    )


def test_job_interfaces_win_over_stored_masters() -> None:
    spec = spec_of(
        {"name": "a", "interface": "Search"},
        interfaces={"Search": {"output_schema": {"type": "array"}}},
    )
    assert validate_job(spec, MASTERS).schemas["a"].output_schema == {"type": "array"}


def test_unknown_interface() -> None:
    spec = spec_of({"name": "a", "interface": "Serch"}, interfaces={"Local": {}})
    (problem,) = invalid(spec).errors
    assert (problem.code, problem.location, problem.task) == (
        "unknown_interface",
        "/tasks/0/interface",
        "a",
    )
    assert problem.expected == ["Enrich", "Local", "Search"]
    assert problem.actual == "Serch"


def test_graph_and_template_problems_are_reported_together() -> None:
    spec = spec_of(
        {"name": "a", "depends_on": ["ghost"], "body": {"x": "{{ tasks.a.output }"}},
        {"name": "b", "when": "tasks.a.output.n >", "interface": "Nope"},
        {"name": "b"},
    )
    assert sorted(where(invalid(spec).errors)) == [
        ("duplicate_task", "/tasks/2/name"),
        ("template_syntax", "/tasks/0/body/x"),
        ("template_syntax", "/tasks/1/when"),
        ("unknown_dependency", "/tasks/0/depends_on/0"),
        ("unknown_interface", "/tasks/1/interface"),
    ]


def test_structural_errors_skip_interface_checks() -> None:
    spec = search_and_enrich(depends_on=["ghost"], body={"ids": "{{ tasks.search.output.label }}"})
    assert [p.code for p in invalid(spec).errors] == ["unknown_dependency"]


def test_validate_interfaces_false_skips_compatibility() -> None:
    spec = search_and_enrich(body={"ids": "{{ tasks.search.output.label }}"})
    spec.validate_interfaces = False
    assert validate_job(spec, MASTERS).order == ("search", "enrich")


def test_single_call_pointers_point_into_the_sent_document() -> None:
    spec = parse_job_document(
        {"url": "http://api.local/{{ params.q }", "body": {"ids": "{{ x", "ok": 1}}
    )
    errors = invalid(spec, single_call=True).errors
    assert where(errors) == [("template_syntax", "/url"), ("template_syntax", "/body/ids")]
    assert where(invalid(spec).errors)[1] == ("template_syntax", "/tasks/0/body/ids")


def test_single_call_strips_only_the_task_prefix() -> None:
    spec = parse_job_document({"url": "http://x/", "interface": "Nope"})
    assert where(invalid(spec, single_call=True).errors) == [("unknown_interface", "/interface")]


def test_garbage_collector_state_is_restored() -> None:
    assert gc.isenabled()
    validate_job(search_and_enrich(), MASTERS)
    assert gc.isenabled()
    gc.disable()
    try:
        validate_job(search_and_enrich(), MASTERS)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_ten_thousand_task_dag_validates() -> None:
    spec = parse_job_document(build_document(10_000))
    result = validate_job(spec, {})
    assert len(result.order) == 10_000
    assert result.order[0] == "root"
    assert result.order[-1] == "sink"
    assert len(result.upstream["sink"]) == 9_998
    assert result.upstream["t5"] == ("root",)


# --- cases that exercise engine.contracts -----------------------------------------------------


def test_contracts_incompatible_reference() -> None:
    spec = search_and_enrich(body={"ids": "{{ tasks.search.output.label }}"})
    errors = invalid(spec).errors
    assert ("incompatible_types", "/tasks/1/body/ids") in where(errors)
    assert {p.edge for p in errors} == {"search -> enrich"}


def test_contracts_unknown_output_path() -> None:
    spec = search_and_enrich(body={"ids": "{{ tasks.search.output.resluts }}"})
    assert ("unknown_output_path", "/tasks/1/body/ids") in where(invalid(spec).errors)


def test_contracts_invalid_schemas_are_located() -> None:
    spec = spec_of(
        {"name": "a", "input_schema": {"type": "nonsense"}},
        {"name": "b", "interface": "Bad"},
        {"name": "c", "interface": "Bad"},
        interfaces={"Bad": {"output_schema": {"properties": {"x": {"minimum": "zero"}}}}},
    )
    errors = invalid(spec).errors
    assert all(p.code == "invalid_schema" for p in errors)
    assert sorted(p.location for p in errors) == [
        "/interfaces/Bad/output_schema/properties/x/minimum",
        "/tasks/0/input_schema/type",
    ]
    assert {p.task for p in errors} == {None, "a"}


def test_contracts_warnings_come_back_on_success_and_failure() -> None:
    spec = spec_of(
        {"name": "a"},
        {"name": "b", "interface": "Enrich", "body": {"ids": "{{ tasks.a.output.ids }}"}},
    )
    result = validate_job(spec, MASTERS)
    assert [p.code for p in result.warnings] == ["unchecked_reference"]
    spec = spec_of(
        {"name": "a"},
        {"name": "b", "interface": "Enrich", "body": {"ids": "{{ tasks.a.output.ids }}", "n": "x"}},
    )
    failure = invalid(spec)
    assert [p.code for p in failure.warnings] == ["unchecked_reference"]
    assert failure.errors
