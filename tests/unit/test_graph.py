"""The task graph (engine.dag.graph): edges, structural problems, the Mermaid picture; and the
orders over a job's tasks (engine.dag.order) on graphs it built."""

from __future__ import annotations

from typing import Any

import pytest

from engine.dag.graph import GraphResult, NameHints, build_graph, to_mermaid
from engine.dag.order import sinks, topological_order
from engine.states import TaskStatus
from schemas.jobs import JobSpec


def job(*tasks: dict[str, Any]) -> JobSpec:
    return JobSpec.model_validate(
        {"tasks": [{"url": "http://api.local/x", **task} for task in tasks]}
    )


def codes(spec: JobSpec) -> list[tuple[str, str, str | None]]:
    return [(p.code, p.location, p.task) for p in build_graph(spec).problems]


def test_explicit_and_implied_edges() -> None:
    spec = job(
        {"name": "search"},
        {"name": "meta"},
        {
            "name": "enrich",
            "depends_on": ["meta"],
            "url": "http://api.local/{{ tasks.search.output.id }}",
            "headers": {"X-Meta": "{{ tasks.meta.headers['etag'] }}"},
            "when": "tasks.gate.status_code == 200",
        },
        {"name": "gate", "params": {"q": "{{ params.q }}"}},
        {"name": "sink", "body": {"all": ["{{ tasks.enrich.output }}"]}},
    )
    result = build_graph(spec)
    assert result.problems == []
    assert result.upstream == {
        "search": (),
        "meta": (),
        "enrich": ("meta", "search", "gate"),
        "gate": (),
        "sink": ("enrich",),
    }
    assert set(result.graph.edges) == {
        ("meta", "enrich"),
        ("search", "enrich"),
        ("gate", "enrich"),
        ("enrich", "sink"),
    }
    assert result.graph.nodes["gate"]["index"] == 3
    assert [r.pointer for r in result.references[2]] == [
        "/tasks/2/url",
        "/tasks/2/headers/X-Meta",
        "/tasks/2/when",
    ]
    assert result.references[4][0].body_path == ("all", 0)


def test_duplicate_task() -> None:
    spec = job({"name": "a"}, {"name": "b"}, {"name": "a"})
    (problem,) = build_graph(spec).problems
    assert (problem.code, problem.location, problem.task) == (
        "duplicate_task",
        "/tasks/2/name",
        "a",
    )
    assert "task 0" in problem.message


def test_unknown_dependency_lists_the_known_names() -> None:
    spec = job({"name": "search"}, {"name": "enrich", "depends_on": ["search", "serch"]})
    (problem,) = build_graph(spec).problems
    assert problem.code == "unknown_dependency"
    assert problem.location == "/tasks/1/depends_on/1"
    assert problem.task == "enrich"
    assert problem.expected == ["enrich", "search"]
    assert problem.actual == "serch"
    assert "did you mean 'search'?" in problem.message


def test_unknown_task_reference_points_at_the_string() -> None:
    spec = job({"name": "a", "body": {"x/y": ["{{ tasks.nope.output.id }}"]}})
    (problem,) = build_graph(spec).problems
    assert problem.code == "unknown_task_reference"
    assert problem.location == "/tasks/0/body/x~1y/0"
    assert problem.edge == "nope -> a"
    assert problem.actual == "nope"


def test_self_dependency_and_self_reference() -> None:
    spec = job({"name": "a", "depends_on": ["a"], "url": "http://x/{{ tasks.a.status_code }}"})
    assert codes(spec) == [
        ("self_dependency", "/tasks/0/depends_on/0", "a"),
        ("self_reference", "/tasks/0/url", "a"),
    ]
    assert build_graph(spec).graph.number_of_edges() == 0


def test_cycle_is_named_in_order() -> None:
    spec = job(
        {"name": "x"},
        {"name": "a", "depends_on": ["c"]},
        {"name": "b", "depends_on": ["a"]},
        {"name": "c", "body": "{{ tasks.b.output }}"},
    )
    (problem,) = build_graph(spec).problems
    assert problem.code == "cycle"
    assert problem.task == "a"
    assert problem.message.endswith("a -> b -> c -> a")
    assert problem.actual == ["a", "b", "c", "a"]
    assert problem.edge == "c -> a"
    assert problem.location == "/tasks/1/depends_on/0"


def test_one_problem_per_cycle() -> None:
    spec = job(
        {"name": "a", "depends_on": ["b"]},
        {"name": "b", "depends_on": ["a"]},
        {"name": "c", "depends_on": ["d"]},
        {"name": "d", "depends_on": ["c", "e"]},
        {"name": "e", "depends_on": ["c"]},
    )
    problems = build_graph(spec).problems
    assert [(p.code, p.task) for p in problems] == [("cycle", "a"), ("cycle", "c")]
    assert problems[0].actual == ["a", "b", "a"]
    assert problems[1].actual == ["c", "d", "c"]
    assert "tasks c, d, e all lie on cycles" in problems[1].message


def test_every_problem_is_reported_at_once() -> None:
    spec = job(
        {"name": "a", "depends_on": ["zz", "b"]},
        {"name": "b", "url": "http://x/{{ tasks.a.output }}"},
        {"name": "a"},
        {"name": "c", "when": "tasks.ghost.output"},
    )
    assert sorted(code for code, _, _ in codes(spec)) == [
        "cycle",
        "duplicate_task",
        "unknown_dependency",
        "unknown_task_reference",
    ]


def test_ten_thousand_tasks() -> None:
    middle = [f"t{i}" for i in range(1, 9999)]
    tasks: list[dict[str, Any]] = [{"name": "root"}]
    tasks += [{"name": n, "body": {"v": "{{ tasks.root.output.items[0] }}"}} for n in middle]
    tasks.append({"name": "sink", "depends_on": middle})
    result = build_graph(job(*tasks))
    assert result.problems == []
    assert result.graph.number_of_nodes() == 10_000
    assert result.graph.number_of_edges() == 2 * 9998
    assert len(result.upstream["sink"]) == 9998
    assert sinks(list(result.upstream), result.upstream) == ["sink"]
    assert topological_order(list(result.upstream), result.upstream)[::9999] == ["root", "sink"]


def test_name_hints_shortlist_when_there_are_many() -> None:
    names = [f"task_{i}" for i in range(100)]
    assert NameHints(names[:3]).expected("task_7") == ["task_0", "task_1", "task_2"]
    shortlist = NameHints(names).expected("task_77x")
    assert 0 < len(shortlist) <= 5
    assert "task_77" in shortlist
    assert NameHints(names).hint("task_77x") == "; did you mean 'task_77'?"


def test_many_unknown_names_stay_cheap() -> None:
    tasks: list[dict[str, Any]] = [{"name": f"t{i}"} for i in range(2000)]
    tasks += [{"name": f"u{i}", "depends_on": [f"missing_{i}"]} for i in range(2000)]
    problems = build_graph(job(*tasks)).problems
    assert len(problems) == 2000
    assert all(p.code == "unknown_dependency" for p in problems)


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def diamond() -> GraphResult:
    spec = job(
        {"name": "d", "depends_on": ["b", "c"]},
        {"name": "c", "depends_on": ["a"]},
        {"name": "b", "depends_on": ["a"]},
        {"name": "a"},
        {"name": "e"},
    )
    return build_graph(spec)


def test_topological_order_keeps_job_order_on_ties(diamond: GraphResult) -> None:
    assert topological_order(list(diamond.upstream), diamond.upstream) == ["a", "c", "b", "d", "e"]


def test_topological_order_leaves_out_cycles() -> None:
    graph = build_graph(
        job(
            {"name": "a", "depends_on": ["b"]},
            {"name": "b", "depends_on": ["a"]},
            {"name": "c", "depends_on": ["b"]},
            {"name": "d"},
        )
    )
    assert topological_order(list(graph.upstream), graph.upstream) == ["d"]


def test_topological_order_ignores_unknown_upstream_names() -> None:
    assert topological_order(["x", "y"], {"y": ["x", "gone"]}) == ["x", "y"]
    assert topological_order([], {}) == []


def test_sinks(diamond: GraphResult) -> None:
    assert sinks(list(diamond.upstream), diamond.upstream) == ["d", "e"]
    assert sinks(["x", "y"], {"y": ["x"], "x": []}) == ["y"]


def test_to_mermaid() -> None:
    text = to_mermaid(
        [("search", TaskStatus.SUCCEEDED), ("end", "running"), ('we"ird', "odd-status")],
        [("search", "end"), ("end", 'we"ird'), ("search", "unknown")],
    )
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert '    n0["search (succeeded)"]:::succeeded' in lines
    assert '    n1["end (running)"]:::running' in lines
    assert '    n2["we#quot;ird (odd_status)"]:::odd_status' in lines
    assert "    n0 --> n1" in lines
    assert "    n1 --> n2" in lines
    assert not any("unknown" in line for line in lines)
    for status in TaskStatus:
        assert any(line.startswith(f"    classDef {status.value} ") for line in lines)
    assert any(line.startswith("    classDef odd_status ") for line in lines)
