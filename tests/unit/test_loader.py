"""engine.jobs.loader: YAML workflow files -> plain documents with marks -> JobSpec."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.errors import JobInvalid, JobQueueError, Problem
from engine.jobs.loader import (
    MAX_VALUES,
    LoadedDocument,
    WorkflowFileError,
    apply_params,
    attach_marks,
    load_workflow_file,
    load_yaml_bytes,
    load_yaml_document,
    mark_for,
    parse_workflow,
    parse_yaml_body,
)
from schemas.jobs import JobSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"

WORKFLOW = """\
name: demo
params:
  base_url: http://127.0.0.1:8001
tasks:
  - name: search
    url: "{{ params.base_url }}/search"
  - name: enrich
    method: POST
    url: "{{ params.base_url }}/enrich"
    body:
      ids: "{{ tasks.search.output.results }}"
      nested:
        - first
        - {deep: 1}
      "a/b~c": 2
"""


def load_error(text: str) -> WorkflowFileError:
    with pytest.raises(WorkflowFileError) as info:
        load_yaml_document(text, source="flow.yaml")
    return info.value


def invalid(text: str) -> JobInvalid:
    with pytest.raises(JobInvalid) as info:
        parse_workflow(load_yaml_document(text, source="flow.yaml"))
    return info.value


# --------------------------------------------------------------------------- marks


def test_marks_point_at_every_value_including_list_items_and_nested_body_keys() -> None:
    loaded = load_yaml_document(WORKFLOW)
    assert loaded.marks[""] == (1, 1)
    assert loaded.marks["/tasks"] == (5, 3)
    assert loaded.marks["/tasks/1"] == (7, 5)
    assert loaded.marks["/tasks/1/body"] == (11, 7)
    assert loaded.marks["/tasks/1/body/ids"] == (11, 12)
    assert loaded.marks["/tasks/1/body/nested/0"] == (13, 11)
    assert loaded.marks["/tasks/1/body/nested/1/deep"] == (14, 18)
    assert loaded.marks["/tasks/1/body/a~1b~0c"] == (15, 16)
    assert loaded.document["tasks"][1]["body"]["a/b~c"] == 2


def test_the_document_is_plain_json_data() -> None:
    loaded = load_yaml_document(WORKFLOW)
    assert loaded.document["tasks"][1]["body"]["nested"] == ["first", {"deep": 1}]
    assert not loaded.single_call


def test_timestamps_become_iso_strings() -> None:
    loaded = load_yaml_document("a: 2024-05-01\nb: 2024-05-01T10:20:30Z\nc: 2024-05-01 10:20:30\n")
    assert loaded.document == {
        "a": "2024-05-01",
        "b": "2024-05-01T10:20:30+00:00",
        "c": "2024-05-01T10:20:30",
    }


def test_aliases_give_independent_copies_marked_at_the_anchor() -> None:
    loaded = load_yaml_document("one: &h {x: [1, 2]}\ntwo: *h\n")
    document = loaded.document
    assert document["one"] == document["two"] == {"x": [1, 2]}
    assert document["one"] is not document["two"]
    assert loaded.marks["/two/x/1"] == loaded.marks["/one/x/1"] == (1, 17)


def test_merge_keys_explicit_keys_win_and_earlier_sources_win() -> None:
    text = (
        "base: &base {method: GET, timeout_sec: 5, retries: 1}\n"
        "more: &more {timeout_sec: 9, extra: true}\n"
        "task:\n"
        "  <<: [*more, *base]\n"
        "  method: POST\n"
    )
    loaded = load_yaml_document(text)
    assert loaded.document["task"] == {
        "method": "POST",
        "timeout_sec": 9,
        "retries": 1,
        "extra": True,
    }
    assert loaded.marks["/task/method"] == (5, 11)
    assert loaded.marks["/task/retries"] == (1, 52)


def test_merge_key_needs_mappings() -> None:
    error = load_error("a:\n  <<: 3\n")
    assert (error.line, error.column) == (2, 7)
    assert "merge key" in error.reason


# --------------------------------------------------------------------------- refused input


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['echo owned']\n",
        "a: !!python/object:collections.OrderedDict {}\n",
        "a: !!python/name:os.system\n",
        "a: !!python/tuple [1, 2]\n",
        "a: !Ref other\n",
        "a: !!set {x}\n",
    ],
)
def test_tags_beyond_plain_data_are_refused(text: str) -> None:
    error = load_error(text)
    assert (error.line, error.column) == (1, 4)
    assert "is not allowed" in error.reason


def test_duplicate_keys_are_refused_at_the_second_key() -> None:
    error = load_error("tasks:\n  - name: a\n    url: x\n    body: {}\n    url: y\n")
    assert (error.line, error.column) == (5, 5)
    assert error.reason == "duplicate key 'url' (first defined on line 3)"
    assert str(error) == "flow.yaml:5:5: duplicate key 'url' (first defined on line 3)"


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("1: a\n", (1, 1), "read as a number; quote it"),
        ("on: a\n", (1, 1), "read as a boolean"),
        ("? [a, b]\n: 1\n", (1, 3), "keys must be strings"),
        ("a: !!binary aGVsbG8=\n", (1, 4), "binary"),
        ("a: [1, .nan]\n", (1, 8), "not a number JSON can carry"),
        ("a: -.inf\n", (1, 4), "not a number JSON can carry"),
        ("- a\n- b\n", (1, 1), "the top level is a list"),
        ("just text\n", (1, 1), "the top level is a single value"),
        ("a: &x [1, *x]\n", (1, 4), "cycle"),
        ("a: 1\n---\nb: 2\n", (2, 1), "another document"),
    ],
)
def test_values_that_are_not_plain_json_are_refused(
    text: str, where: tuple[int, int], words: str
) -> None:
    error = load_error(text)
    assert (error.line, error.column) == where
    assert words in error.reason


def test_empty_document_is_refused() -> None:
    error = load_error("# nothing here\n")
    assert error.line is None
    assert "empty" in str(error)


def test_syntax_error_has_file_line_and_column_and_no_traceback() -> None:
    error = load_error("name: x\ntasks:\n  - name: a\n    url: 'http://x\n")
    assert error.source == "flow.yaml"
    assert error.line == 5
    assert str(error).startswith("flow.yaml:5:")
    assert "quoted scalar started at line 4" in str(error)
    assert "Traceback" not in str(error)
    assert isinstance(error, JobQueueError)


def test_tab_indentation_gets_a_hint() -> None:
    error = load_error("a:\n\tb: 1\n")
    assert (error.line, error.column) == (2, 1)
    assert "spaces, not tabs" in error.reason


def test_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        lines.append(f"l{level}: &l{level} [{refs}]")
    started = time.monotonic()
    error = load_error("\n".join(lines) + "\n")
    assert time.monotonic() - started < 1
    assert f"more than {MAX_VALUES} values" in error.reason


def test_bytes_must_be_utf8() -> None:
    with pytest.raises(WorkflowFileError) as info:
        load_yaml_bytes(b"name: ok\nurl: caf\xe9\n", source="flow.yaml")
    assert (info.value.line, info.value.column) == (2, 9)
    assert "UTF-8" in info.value.reason


def test_control_characters_are_refused_with_position() -> None:
    error = load_error("a: ok\nb: x\x07\n")
    assert (error.line, error.column) == (2, 5)


def test_error_converts_to_a_problem() -> None:
    problem = load_error("a: [1\n").to_problem()
    assert problem.code == "invalid_yaml"
    assert problem.line == 2


# --------------------------------------------------------------------------- REST body


def test_yaml_body_gives_the_document() -> None:
    raw = "\ufeffmethod: GET\nurl: https://example.org/\n".encode()
    assert parse_yaml_body(raw) == {"method": "GET", "url": "https://example.org/"}


def test_yaml_body_follows_the_same_safety_rules() -> None:
    with pytest.raises(WorkflowFileError) as info:
        parse_yaml_body(b"url: !!python/object/apply:os.system ['id']\n")
    assert info.value.source == "<request body>"
    with pytest.raises(WorkflowFileError):
        parse_yaml_body(b"\xff\xfe")


# --------------------------------------------------------------------------- the job model


def test_parse_workflow_gives_the_job_model() -> None:
    spec = parse_workflow(load_yaml_document(WORKFLOW))
    assert isinstance(spec, JobSpec)
    assert [task.name for task in spec.tasks] == ["search", "enrich"]
    assert spec.tasks[1].body["ids"] == "{{ tasks.search.output.results }}"


def test_single_call_form_becomes_the_task_main() -> None:
    loaded = load_yaml_document("method: post\nurl: https://example.org/post\n")
    assert loaded.single_call
    spec = parse_workflow(loaded)
    assert [(task.name, task.method) for task in spec.tasks] == [("main", "POST")]


def test_validation_errors_are_all_reported_with_pointer_line_and_column() -> None:
    error = invalid(
        "name: demo\n"
        "priority: high\n"
        "tasks:\n"
        "  - name: search\n"
        "    url: http://x\n"
        "    methd: GET\n"
        "  - name: enrich\n"
        "    trigger_rule: sometimes\n"
    )
    by_location = {problem.location: problem for problem in error.errors}
    assert set(by_location) == {
        "/priority",
        "/tasks/0/methd",
        "/tasks/1/url",
        "/tasks/1/trigger_rule",
    }
    assert all(problem.code == "invalid_field" for problem in error.errors)
    unknown = by_location["/tasks/0/methd"]
    assert (unknown.line, unknown.column, unknown.task) == (6, 12, "search")
    assert unknown.message == "unknown field 'methd'; did you mean 'method'?"
    missing = by_location["/tasks/1/url"]
    assert (missing.line, missing.column) == (7, 5)  # the task's mapping: the field has no line
    assert missing.message == "required field 'url' is missing"
    assert by_location["/tasks/1/trigger_rule"].actual == "sometimes"
    assert (by_location["/priority"].line, by_location["/priority"].column) == (2, 11)


def test_errors_in_nested_values_point_at_them() -> None:
    error = invalid("tasks:\n  - name: a\n    url: http://x\n    headers:\n      X-Count: 3\n")
    (problem,) = error.errors
    assert problem.location == "/tasks/0/headers/X-Count"
    assert (problem.line, problem.column) == (5, 16)


def test_misspelled_tasks_gets_a_hint() -> None:
    error = invalid("name: demo\ntask:\n  - name: a\n")
    messages = {problem.location: problem.message for problem in error.errors}
    assert messages["/task"] == "unknown field 'task'; did you mean 'tasks'?"
    assert "`tasks:`" in messages["/url"]


def test_single_call_errors_point_into_the_single_call_document() -> None:
    error = invalid("method: GET\nurl: http://x\ntimeout_sec: -1\n")
    (problem,) = error.errors
    assert (problem.location, problem.line, problem.column) == ("/timeout_sec", 3, 14)


# --------------------------------------------------------------------------- engine problems


def test_attach_marks_uses_the_pointer_or_its_nearest_marked_ancestor() -> None:
    marks = load_yaml_document(WORKFLOW).marks
    problems = [
        Problem(code="a", message="m", location="/tasks/1/body/ids"),
        Problem(code="b", message="m", location="/tasks/1/body/ids/0/id"),
        Problem(code="c", message="m", location="/tasks/1/depends_on"),
        Problem(code="d", message="m", location=""),
        Problem(code="e", message="m", location="/tasks/0", line=99, column=9),
    ]
    marked = attach_marks(problems, marks, single_call=False)
    assert [(p.line, p.column) for p in marked] == [(11, 12), (11, 12), (7, 5), (1, 1), (99, 9)]
    assert marked[0].location == "/tasks/1/body/ids"


def test_attach_marks_for_the_single_call_form() -> None:
    loaded = load_yaml_document(
        "method: POST\nurl: http://x\nbody:\n  ids: [1]\ntask_ttl_seconds: 5\n"
    )
    problems = [
        Problem(code="a", message="m", location="/body/ids"),
        Problem(code="b", message="m", location="/tasks/0/body/ids/0"),
        Problem(code="c", message="m", location="/tasks/0/ttl_seconds"),
    ]
    marked = attach_marks(problems, loaded.marks, single_call=loaded.single_call)
    assert [(p.line, p.column) for p in marked] == [(4, 8), (4, 9), (5, 19)]


def test_mark_for_unmarked_pointer_falls_back_to_none_without_a_root() -> None:
    assert mark_for({}, "/a/b") is None
    assert mark_for({"": (1, 1)}, "not-a-pointer") == (1, 1)


# --------------------------------------------------------------------------- --param


def test_apply_params_reads_values_as_yaml_scalars() -> None:
    document = {"tasks": [], "params": {"query": "cats", "n": 1}}
    overrides = {
        "n": "3",
        "ratio": "0.5",
        "flag": "true",
        "query": "dogs",
        "empty": "",
        "quoted": "'7'",
        "nothing": "null",
        "pair": "a: b",
        "list": "[1, 2]",
        "day": "2024-01-01",
        "inf": ".inf",
        "template": "{{ x }}",
    }
    result = apply_params(document, overrides)
    assert result["params"] == {
        "query": "dogs",
        "n": 3,
        "ratio": 0.5,
        "flag": True,
        "empty": "",
        "quoted": "7",
        "nothing": None,
        "pair": "a: b",
        "list": "[1, 2]",
        "day": "2024-01-01",
        "inf": ".inf",
        "template": "{{ x }}",
    }
    assert document["params"] == {"query": "cats", "n": 1}  # a new document


def test_apply_params_creates_params_and_refuses_the_single_call_form() -> None:
    assert apply_params({"tasks": []}, {"n": "2"})["params"] == {"n": 2}
    with pytest.raises(WorkflowFileError, match="DAG form"):
        apply_params({"method": "GET", "url": "http://x"}, {"n": "2"})
    with pytest.raises(WorkflowFileError, match="not a mapping"):
        apply_params({"tasks": [], "params": [1]}, {"n": "2"})


def test_load_workflow_file_applies_params(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(WORKFLOW, encoding="utf-8")
    spec, loaded = load_workflow_file(path, params={"base_url": "http://127.0.0.1:9"})
    assert spec.params["base_url"] == "http://127.0.0.1:9"
    assert loaded.document["params"]["base_url"] == "http://127.0.0.1:9"
    assert loaded.source == str(path)
    assert isinstance(loaded, LoadedDocument)


def test_load_workflow_file_reports_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(WorkflowFileError) as info:
        load_workflow_file(missing)
    assert str(info.value).startswith(f"{missing}: cannot read")


def test_load_workflow_file_reports_field_errors_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text("tasks:\n  - name: 1bad\n    url: http://x\n", encoding="utf-8")
    with pytest.raises(JobInvalid) as info:
        load_workflow_file(path)
    (problem,) = info.value.errors
    assert (problem.location, problem.line, problem.column) == ("/tasks/0/name", 2, 11)


# --------------------------------------------------------------------------- shipped examples


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_at_least_five_examples() -> None:
    names = {path.stem for path in EXAMPLE_FILES}
    assert {
        "single_call",
        "fan_out_fan_in",
        "search_enrich_notify",
        "retry_backoff",
        "conditional_branch",
    } <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.stem)
def test_every_example_parses_into_a_job(path: Path) -> None:
    spec, loaded = load_workflow_file(path)
    assert isinstance(spec, JobSpec)
    if not loaded.single_call:
        assert spec.params["base_url"] == "http://127.0.0.1:8001"
        spec, _ = load_workflow_file(path, params={"base_url": "http://127.0.0.1:1"})
        assert spec.params["base_url"] == "http://127.0.0.1:1"


def test_interface_example_defines_its_interfaces_inline() -> None:
    spec, _ = load_workflow_file(EXAMPLES / "search_enrich_notify.yaml")
    assert spec.validate_interfaces
    assert set(spec.interfaces) == {"SearchResultInterface", "EnrichInterface", "NotifyInterface"}
    assert [task.interface for task in spec.tasks] == list(spec.interfaces)
    assert "\n" in spec.tasks[2].body["message"]
