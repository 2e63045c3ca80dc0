"""Sandboxed rendering and static analysis of job templates (engine.templates)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.templates import rendering as templating
from engine.templates.rendering import (
    TemplateError,
    build_context,
    evaluate_condition,
    find_references,
    has_template,
    is_template,
    is_whole_expression,
    render_value,
    syntax_problems,
)
from engine.templates.sandbox import SandboxEnvironment


@pytest.fixture
def context() -> dict[str, Any]:
    return build_context(
        params={"query": "cats", "limit": 2},
        job_id="j_1",
        job_name="demo",
        upstream={
            "search": {
                "output": {"results": [{"id": 1}, {"id": 2}], "count": 2, "tag": "x"},
                "status_code": 200,
                "headers": {"content-type": "application/json"},
            }
        },
    )


# --- rendering ----------------------------------------------------------------------------------


def test_build_context_shape(context: dict[str, Any]) -> None:
    assert context["params"] == {"query": "cats", "limit": 2}
    assert context["job"] == {"id": "j_1", "name": "demo"}
    assert set(context["tasks"]["search"]) == {"output", "status_code", "headers"}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ tasks.search.output.results }}", [{"id": 1}, {"id": 2}]),
        ("{{ tasks.search.output }}", {"results": [{"id": 1}, {"id": 2}], "count": 2, "tag": "x"}),
        ("{{ tasks.search.output.count }}", 2),
        ("  {{ tasks.search.output.count }}\n", 2),
        ("{{ tasks.search.status_code == 200 }}", True),
        ("{{ none }}", None),
        ("{{ tasks.search.output.results | map(attribute='id') | list }}", [1, 2]),
        ("{{ {'n': params.limit * 2} }}", {"n": 4}),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{ 2.5 }}", 2.5),
    ],
)
def test_whole_expression_yields_native_value(
    template: str, expected: object, context: dict[str, Any]
) -> None:
    assert render_value(template, context) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("q={{ params.query }}", "q=cats"),
        ("{{ tasks.search.output.count }}{{ params.limit }}", "22"),
        ("{% for r in tasks.search.output.results %}{{ r.id }},{% endfor %}", "1,2,"),
        ("{{ params.query ~ '!' }}-{# note #}", "cats!-"),
        ("{{ job.id }}-{{ job.name | upper }}", "j_1-DEMO"),
    ],
)
def test_other_templates_render_to_text(
    template: str, expected: str, context: dict[str, Any]
) -> None:
    assert render_value(template, context) == expected


def test_render_walks_json_and_leaves_keys_and_plain_strings(context: dict[str, Any]) -> None:
    value = {
        "{{ params.query }}": "plain",
        "ids": ["{{ tasks.search.output.count }}", 3, None, {"q": "{{ params.query }}"}],
        "flag": True,
    }
    assert render_value(value, context) == {
        "{{ params.query }}": "plain",
        "ids": [2, 3, None, {"q": "cats"}],
        "flag": True,
    }


def test_plain_strings_never_reach_jinja(context: dict[str, Any]) -> None:
    env = SandboxEnvironment()
    assert render_value({"a": "no template } here {"}, context, env=env) == {
        "a": "no template } here {"
    }
    assert env._template.cache_info().currsize == 0


def test_templates_are_compiled_once(context: dict[str, Any]) -> None:
    env = SandboxEnvironment()
    for _ in range(3):
        render_value(["q={{ params.query }}", "q={{ params.query }}"], context, env=env)
    info = env._template.cache_info()
    assert (info.misses, info.hits) == (1, 5)


def test_undefined_names_the_path_and_the_pointer(context: dict[str, Any]) -> None:
    body = {"ids": "{{ tasks.search.output.missing }}"}
    with pytest.raises(TemplateError) as caught:
        render_value(body, context, pointer="/tasks/1/body")
    error = caught.value
    assert error.pointer == "/tasks/1/body/ids"
    assert error.message.startswith("tasks.search.output.missing is undefined")
    assert "results, count, tag" in error.message
    assert str(error).endswith("at /tasks/1/body/ids")


@pytest.mark.parametrize(
    "template",
    [
        "x{{ tasks.other.output }}",
        "{{ tasks.search.output.results[5] }}",
        "{{ params.nope | length }}",
        "{% for x in params.nope %}{% endfor %}",
    ],
)
def test_strict_undefined_raises(template: str, context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="undefined"):
        render_value(template, context)


def test_pointer_escaping_in_render_errors(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as caught:
        render_value({"a/b": {"c~d": "{{ nope }}"}}, context, pointer="/tasks/0/body")
    assert caught.value.pointer == "/tasks/0/body/a~1b/c~0d"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 'a' * 10**9 }}", "limit"),
        ("{{ [1, 2] * 10**9 }}", "limit"),
        ("{{ range(10**9) | list }}", "range"),
        ("{{ ''.__class__ }}", "unsafe"),
        ("{{ cycler.mro() }}", "unsafe"),
        ("{{ params.__init__ }}", "unsafe"),
        ("{{ 2 ** 100000 }}", "bits"),
        ("{{ (10 ** 10) ** (10 ** 10) }}", "bits"),
        ("{{ 'x' | center(10**9) }}", "limit"),
        ("{{ 'x' | indent(10**9) }}", "limit"),
        ("{{ 'x'.ljust(10**9) }}", "limit"),
        ("{{ '%999999999d' % 1 }}", "limit"),
        ("{{ '%*d' % (5, 1) }}", "not allowed"),
        ("{{ '{:>999999999}'.format(1) }}", "limit"),
        ("{{ ('a' * 1000000).replace('a', 'aaaa') }}", "limit"),
        ("{{ [1] | batch(10**9, 'x') | list }}", "limit"),
        ("{{ [[1]] | sum(start=[]) }}", "not allowed"),
        ("{{ range(100000) | map('string') | map('center', 1000000) | join }}", "in total"),
    ],
)
def test_sandbox_refuses_unbounded_work(
    template: str, reason: str, context: dict[str, Any]
) -> None:
    with pytest.raises(TemplateError, match="refused by the template sandbox") as caught:
        render_value(template, context, pointer="/tasks/0/body")
    assert reason in caught.value.message


@pytest.mark.parametrize("operator", ["~", "+"])
def test_sandbox_refuses_doubling_in_a_loop(operator: str, context: dict[str, Any]) -> None:
    env = SandboxEnvironment(max_output_bytes=1024)
    start = "'ab'" if operator == "~" else "[1, 'a']"
    template = (
        f"{{% set ns = namespace(s={start}) %}}{{% for i in range(64) %}}"
        f"{{% set ns.s = ns.s {operator} ns.s %}}{{% endfor %}}{{{{ ns.s | length }}}}"
    )
    with pytest.raises(TemplateError, match="above the 1,024-byte limit"):
        render_value(template, context, env=env)


def test_lipsum_is_not_available(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="lipsum"):
        render_value("{{ lipsum(10**6) }}", context)


def test_render_deadline(context: dict[str, Any]) -> None:
    env = SandboxEnvironment(max_render_seconds=0.05)
    nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError, match=r"longer than 0\.05 s"):
        render_value(nested, context, env=env)


def test_rendered_size_cap(context: dict[str, Any]) -> None:
    env = SandboxEnvironment(max_output_bytes=100)
    assert render_value("{% for i in range(50) %}x{% endfor %}", context, env=env) == "x" * 50
    with pytest.raises(TemplateError, match="exceeds 100 bytes"):
        render_value("{% for i in range(101) %}x{% endfor %}", context, env=env)
    with pytest.raises(TemplateError, match="exceeds 100 bytes"):
        render_value("{{ range(101) | list }}", context, env=env)
    with pytest.raises(TemplateError, match="above the 100-byte limit"):
        render_value("{{ 'é' * 60 }}!", context, env=env)


def test_other_failures_become_template_errors(context: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        render_value("{{ 1 / 0 }}", context)
    with pytest.raises(TemplateError, match="cannot be sent as JSON"):
        render_value("{{ cycler }}", context)
    with pytest.raises(TemplateError, match="syntax"):
        render_value("{{ params.query }", context)


def test_evaluate_condition(context: dict[str, Any]) -> None:
    assert evaluate_condition("tasks.search.output.count > 0", context) is True
    assert evaluate_condition("params.query == 'dogs'", context) is False
    assert evaluate_condition("tasks.search.output.results", context) is True
    with pytest.raises(TemplateError) as caught:
        evaluate_condition("tasks.search.output.cnt > 0", context, pointer="/tasks/1/when")
    assert caught.value.message.startswith("tasks.search.output.cnt is undefined")
    assert caught.value.pointer == "/tasks/1/when"


# --- analysis ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("s", "template", "whole"),
    [
        ("plain", False, False),
        ("{ not } a template", False, False),
        ("{{ x }}", True, True),
        ("  {{- x.y[0] -}}  ", True, True),
        ("{{ x | length }}", True, True),
        ("{{ x }}{{ y }}", True, False),
        ("a {{ x }}", True, False),
        ("{% if x %}1{% endif %}", True, False),
        ("{# comment #}", True, False),
    ],
)
def test_is_template_and_is_whole_expression(s: str, template: bool, whole: bool) -> None:
    assert is_template(s) is template
    assert is_whole_expression(s) is whole


def test_syntax_problems_point_at_the_leaf() -> None:
    body = {"ok": "{{ a }}", "a/b": ["x", {"c~": "{{ a.b }"}], "line": "one\n{% if %}"}
    problems = syntax_problems(body, pointer="/tasks/2/body", task="enrich")
    assert [(p.code, p.location, p.task) for p in problems] == [
        ("template_syntax", "/tasks/2/body/a~1b/1/c~0", "enrich"),
        ("template_syntax", "/tasks/2/body/line", "enrich"),
    ]
    assert "unexpected '}'" in problems[0].message
    assert "line 2 of the template" in problems[1].message
    assert problems[0].actual == "{{ a.b }"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ x | nosuchfilter }}", "no filter named 'nosuchfilter'"),
        ("{% if x is nosuchtest %}{% endif %}", "no test named 'nosuchtest'"),
        ("{% include 'other' %}", "not available"),
    ],
)
def test_syntax_problems_catch_what_only_compiling_would(source: str, message: str) -> None:
    (problem,) = syntax_problems(source, pointer="/tasks/0/url", task="t")
    assert message in problem.message


def test_syntax_problems_of_when_expressions() -> None:
    assert (
        syntax_problems("tasks.a.output.n > 0", pointer="/tasks/1/when", task="b", condition=True)
        == []
    )
    (problem,) = syntax_problems(
        "tasks.a.output.n >", pointer="/tasks/1/when", task="b", condition=True
    )
    assert problem.location == "/tasks/1/when"
    assert "of the expression" in problem.message
    (extra,) = syntax_problems("a b", pointer="/tasks/1/when", task="b", condition=True)
    assert "'b' after the expression" in extra.message


def _refs(value: object, **kwargs: Any) -> list[tuple[Any, ...]]:
    return [
        (r.task, r.attr, r.path, r.pointer, r.body_path, r.whole, r.dynamic)
        for r in find_references(value, **kwargs)
    ]


def test_references_through_attributes_and_subscripts() -> None:
    body = {
        "ids": "{{ tasks.search.output.results[0].id }}",
        "k": "{{ tasks['search'].output['a b'][2] }}",
        "list": ["{{ tasks.other.status_code }}", "h={{ tasks.other.headers['x-id'] }}"],
    }
    assert _refs(body, pointer="/tasks/1/body", body_root="/tasks/1/body") == [
        ("search", "output", ("results", 0, "id"), "/tasks/1/body/ids", ("ids",), True, False),
        ("search", "output", ("a b", 2), "/tasks/1/body/k", ("k",), True, False),
        ("other", "status_code", (), "/tasks/1/body/list/0", ("list", 0), True, False),
        ("other", "headers", ("x-id",), "/tasks/1/body/list/1", ("list", 1), False, False),
    ]


def test_references_in_filters_and_expressions_are_not_whole() -> None:
    found = _refs("{{ tasks.a.output.items | map(attribute='id') | list }}", pointer="/tasks/1/url")
    assert found == [("a", "output", ("items",), "/tasks/1/url", None, False, False)]
    found = _refs("{{ tasks.a.output.n + tasks.b.output.m }}", pointer="/p")
    assert [(t, p, w) for t, _, p, _, _, w, _ in found] == [
        ("a", ("n",), False),
        ("b", ("m",), False),
    ]


def test_dynamic_subscripts_and_method_calls_stop_the_path() -> None:
    found = _refs("{{ tasks.a.output.items[params.i].id }}", pointer="/p")
    assert found == [("a", "output", ("items",), "/p", None, False, True)]
    found = _refs("{{ tasks.a.output.get('x') }}", pointer="/p")
    assert found == [("a", "output", (), "/p", None, False, True)]
    found = _refs("{{ tasks.a.output.items[tasks.b.output.i] }}", pointer="/p")
    assert [(t, p, d) for t, _, p, _, _, _, d in found] == [
        ("a", ("items",), True),
        ("b", ("i",), False),
    ]


def test_references_in_statements_and_when() -> None:
    loop = "{% for x in tasks.a.output.items %}{{ x }}{% endfor %}"
    found = _refs(loop + "{% if tasks.b.status_code %}{% endif %}", pointer="/tasks/2/url")
    assert [(t, a) for t, a, *_ in found] == [("a", "output"), ("b", "status_code")]
    found = _refs(
        "tasks.a.output.count > 0 and tasks['b'].output", pointer="/tasks/2/when", condition=True
    )
    assert [(t, a, p, w) for t, a, p, _, _, w, _ in found] == [
        ("a", "output", ("count",), False),
        ("b", "output", (), False),
    ]


def test_unknown_attributes_and_other_roots() -> None:
    found = _refs(
        "{{ tasks.a.outptu.x }} {{ tasks.b }} {{ params.tasks }} {{ tasks }}", pointer="/p"
    )
    assert [(t, a, p) for t, a, p, *_ in found] == [("a", None, ()), ("b", None, ())]


def test_reference_pointer_and_body_path_escaping() -> None:
    found = _refs(
        {"a/b": {"~c": ["{{ tasks.x.output }}"]}},
        pointer="/tasks/0/body",
        body_root="/tasks/0/body",
    )
    assert found[0][3:5] == ("/tasks/0/body/a~1b/~0c/0", ("a/b", "~c", 0))
    inner = _refs("{{ tasks.x.output }}", pointer="/tasks/0/body/a~1b/3", body_root="/tasks/0/body")
    assert inner[0][4] == ("a/b", 3)


FAST_PATH_SOURCES = [
    "{{ tasks.a.output.items[0].id }}",
    "  {{- tasks.a.output['k'] -}}  ",
    'x={{ tasks.a.output["k y"][12] }}&y={{ params.q }}',
    "{{ tasks.a.output.x }}}",
    "a{{{ tasks.a.output.x }}",
    "{{ tasks.a.output.items[007] }}",
    "{{ true.x }}",
    "{{ tasks.a.output.x }} {% if x %}{% endif %}",
    "{{tasks.a.status_code}}",
    "{{ tasks.a.output.x.0 }}",
]


@pytest.mark.parametrize("source", FAST_PATH_SOURCES)
def test_fast_path_agrees_with_jinja(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    templating._analyse.cache_clear()
    fast = (
        _refs(source, pointer="/p"),
        is_whole_expression(source),
        syntax_problems(source, pointer="/p", task="t"),
    )
    monkeypatch.setattr(templating, "_fast_chains", lambda source: None)
    templating._analyse.cache_clear()
    slow = (
        _refs(source, pointer="/p"),
        is_whole_expression(source),
        syntax_problems(source, pointer="/p", task="t"),
    )
    templating._analyse.cache_clear()
    assert fast == slow


def test_has_template_looks_at_every_string_of_a_json_value() -> None:
    assert has_template({"a": [1, {"b": "x {{ params.q }}"}]})
    assert has_template("{# a comment is template syntax too #}")
    assert not has_template({"a": [1, "plain", None, {"b": True}]})
    assert not has_template({"{{ keys are not rendered }}": 1})
