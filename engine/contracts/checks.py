"""Interface contracts: are a task's templates and body compatible with the declared schemas?

Pure functions, no I/O. The creation-time checks live in :func:`check_task`
(one task, its upstream output schemas already resolved by the caller); :func:`schema_problems`
says whether a schema is valid draft-07; :func:`validate_instance` is the run-time check of a
rendered request body or a response body.

Soundness rule (see :mod:`engine.contracts.compat`): a producer/consumer pair is called compatible
only when every value the producer's schema admits provably fits the consumer's schema. What the
checker cannot decide is a *warning* that names the keyword, never a silent pass, and an
*error* is raised only where the producer's schema declares values the consumer rejects.

Problem codes:

=============================  ========  ===================================================
code                           severity  cause
=============================  ========  ===================================================
invalid_schema                 error     a schema is not valid draft-07 (or has a dangling $ref)
unknown_output_path            error     ``tasks.X.output.a.b`` (or ``item.a``) names a path
                                         its schema lacks
unknown_param                  error     ``params.a`` names a parameter ``params_schema`` lacks
incompatible_types             error     a referenced value does not fit the input schema
missing_input_property         error     a required input property the body never provides
unexpected_input_property      error     a body key the input schema forbids
invalid_input_literal          error     a literal in the body violates the input schema
unchecked_reference            warning   the upstream declares no output schema
undecidable_output_path        warning   the output schema is silent about the path
dynamic_reference              warning   the path has a part computed at run time
undecidable_compatibility      warning   compatibility could not be proved either way
=============================  ========  ===================================================
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from engine.contracts.compat import Mismatch, Verdict, compare, consumer_kinds
from engine.contracts.inputs import Report, check_body
from engine.contracts.paths import (
    PathLookup,
    format_path,
    input_position,
    lookup_output_path,
    resolve_output_path,
)
from engine.contracts.tools import (
    SCHEMA_FAILURES,
    Node,
    UnresolvedRef,
    clip,
    deref,
    describe,
    is_trivial,
    resolver_for,
    short,
    type_names,
    validator,
)
from engine.errors import Problem
from engine.jsonpointer import join_pointer, split_pointer
from engine.templates import Reference, VariableReference, is_whole_expression

__all__ = [
    "HEADERS_SCHEMA",
    "STATUS_CODE_SCHEMA",
    "Mismatch",
    "PathLookup",
    "Verdict",
    "check_task",
    "check_variables",
    "compare",
    "for_each_items",
    "resolve_output_path",
    "schema_problems",
    "validate_instance",
]

#: what ``tasks.X.status_code`` yields
STATUS_CODE_SCHEMA: dict[str, Any] = {"type": "integer", "minimum": 100, "maximum": 599}
#: what ``tasks.X.headers`` yields
HEADERS_SCHEMA: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_NAMED = frozenset({"properties", "patternProperties", "definitions", "$defs", "dependencies"})
_DATA = frozenset({"enum", "const", "default", "examples"})
_META = Draft7Validator(Draft7Validator.META_SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER)


def schema_problems(schema: object, *, location: str, task: str | None) -> list[Problem]:
    """Every reason ``schema`` is not a valid draft-07 schema (empty when it is)."""
    if not isinstance(schema, dict | bool):
        message = f"a JSON Schema must be an object or a boolean, not {type(schema).__name__}"
        return [
            Problem(
                code="invalid_schema",
                message=message,
                location=location,
                task=task,
                expected="object or boolean",
                actual=short(schema),
            )
        ]
    try:
        problems = [_meta_problem(e, location, task) for e in _META.iter_errors(schema)]
        problems += _dangling_refs(schema, location, task)
    except RecursionError:
        message = "the schema nests too deeply to be checked"
        return [Problem(code="invalid_schema", message=message, location=location, task=task)]
    return sorted(problems, key=lambda p: p.location)


def _meta_problem(error: Any, location: str, task: str | None) -> Problem:
    path = tuple(error.absolute_path)
    keyword = _keyword_of(path)
    detail = best_match(error.context).message if error.context else error.message
    where = join_pointer(path) or "/"
    message = f"invalid JSON Schema (draft-07): {keyword!r} at {where}: {detail}"
    if keyword is None:
        message = f"invalid JSON Schema (draft-07) at {where}: {detail}"
    return Problem(
        code="invalid_schema",
        message=message,
        location=location + join_pointer(path),
        task=task,
        expected=f"{error.validator} {short(error.validator_value, 60)}",
        actual=short(error.instance),
    )


def _keyword_of(path: tuple[str | int, ...]) -> str | None:
    """The schema keyword whose value is wrong: the last path part that is not a name or index."""
    for i in range(len(path) - 1, -1, -1):
        if isinstance(path[i], str) and (i == 0 or path[i - 1] not in _NAMED):
            return str(path[i])
    return None


def _dangling_refs(schema: Any, location: str, task: str | None) -> list[Problem]:
    resolver = resolver_for(schema)
    problems: list[Problem] = []
    for path, ref in _refs(schema, ()):
        try:
            resolver.lookup(ref)
        except Exception:  # referencing raises several kinds for a bad reference
            message = (
                f"$ref {ref!r} at {join_pointer(path) or '/'} does not resolve inside this "
                "schema (only local references such as #/definitions/name are supported)"
            )
            problems.append(
                Problem(
                    code="invalid_schema",
                    message=message,
                    task=task,
                    location=location + join_pointer(path),
                    expected="a local $ref",
                    actual=ref,
                )
            )
    return problems


def _refs(value: Any, path: tuple[str | int, ...]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            if key == "$ref" and isinstance(sub, str):
                found.append(((*path, key), sub))
            elif key not in _DATA:
                found += _refs(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            found += _refs(sub, (*path, i))
    return found


def validate_instance(schema: Any, instance: object) -> list[dict[str, Any]]:
    """Every violation of ``schema`` by ``instance``: ``{"pointer", "message", "keyword"}``."""
    try:
        errors = list(validator(schema).iter_errors(instance))
    except SCHEMA_FAILURES as exc:
        return [
            {
                "pointer": "",
                "message": f"the schema could not be applied: {exc}",
                "keyword": "schema",
            }
        ]
    found = [
        {
            "pointer": join_pointer(tuple(e.absolute_path)),
            "message": clip(e.message),
            "keyword": str(e.validator),
        }
        for e in errors
    ]
    keyed = sorted(
        zip(errors, found, strict=True),
        key=lambda pair: (_sort_key(pair[0].absolute_path), pair[1]["keyword"], pair[1]["message"]),
    )
    return [item for _, item in keyed]


def _sort_key(path: Any) -> list[tuple[int, Any]]:
    return [(0, p) if isinstance(p, int) else (1, str(p)) for p in path]


def check_task(
    *,
    task: str,
    task_index: int,
    input_schema: dict[str, Any] | bool | None,
    body: object,
    refs: list[Reference],
    upstream_outputs: dict[str, dict[str, Any] | bool | None],
) -> tuple[list[Problem], list[Problem]]:
    """The interface errors and warnings of one task: ``(errors, warnings)``.

    ``upstream_outputs`` maps each upstream task to its output schema (``None``: it declares
    none). References to tasks missing from it are left to the graph checks.
    """
    report = Report(task, task_index)
    for ref in refs:
        _check_reference(report, ref, input_schema, upstream_outputs, body)
    if input_schema is not None:
        check_body(report, input_schema, body)
    return report.errors, report.warnings


def _source_schema(ref: Reference, upstream_outputs: dict[str, Any]) -> Any:
    if ref.attr == "status_code":
        return STATUS_CODE_SCHEMA
    if ref.attr == "headers":
        return HEADERS_SCHEMA
    return upstream_outputs[ref.task]


def _check_reference(
    report: Report,
    ref: Reference,
    input_schema: Any,
    upstream_outputs: dict[str, Any],
    body: object,
) -> None:
    if ref.attr is None or ref.task not in upstream_outputs:
        return
    found = _referenced_schema(report, ref, upstream_outputs)
    if found is None or input_schema is None or ref.body_path is None:
        return
    position = input_position(input_schema, ref.body_path)
    if position.status != "found":
        return  # the body walk reports the unexpected property itself
    text = f"tasks.{ref.task}.{format_path(ref.path, ref.attr)}"
    if ref.whole:
        _check_whole(report, ref, found, position, text)
    elif is_whole_expression(_value_at(body, ref.body_path)):
        _check_expression(report, ref, position, text)
    else:
        _check_interpolated(report, ref, position, text)


def _referenced_schema(
    report: Report, ref: Reference, upstream_outputs: dict[str, Any]
) -> Node | None:
    """The upstream sub-schema a reference reads, or None (after reporting why not)."""
    edge = f"{ref.task} -> {report.task}"
    actual = format_path(ref.path, ref.attr or "output")
    text = f"tasks.{ref.task}.{actual}"
    source = _source_schema(ref, upstream_outputs)
    if source is None:
        message = (
            f"{text} cannot be checked: task {ref.task!r} declares no output schema "
            "(give it an interface or an output_schema)"
        )
        report.add(False, "unchecked_reference", message, ref.pointer, edge=edge, actual=actual)
        return None
    found, lookup = lookup_output_path(Node(source, source), ref.path)
    if lookup.status == "missing":
        message = f"{text} does not exist in the output schema of {ref.task!r}: {lookup.reason}"
        expected = list(lookup.declared)
        report.add(
            True,
            "unknown_output_path",
            message,
            ref.pointer,
            edge=edge,
            expected=expected,
            actual=actual,
        )
        return None
    if found is None:
        message = (
            f"{text} cannot be checked against the output schema of {ref.task!r}: {lookup.reason}"
        )
        report.add(False, "undecidable_output_path", message, ref.pointer, edge=edge, actual=actual)
        return None
    if ref.dynamic:
        message = f"{text} is followed by a part computed at run time; only {text} was checked"
        report.add(False, "dynamic_reference", message, ref.pointer, edge=edge, actual=actual)
        return None
    return found


def _check_whole(report: Report, ref: Reference, found: Node, position: Any, text: str) -> None:
    verdict = compare(
        found.schema,
        position.node.schema,
        producer_root=found.root,
        consumer_root=position.node.root,
    )
    if not verdict.reasons:
        return
    produced, wanted = describe(found), describe(position.node)
    place = f"body{join_pointer(ref.body_path or ())}" if ref.body_path else "the body"
    for m in verdict.reasons:
        detail = f"{text}{_instance_text(m.instance)}: {m.message}" if m.instance else m.message
        where = (position.pointer + m.pointer) or "/"
        message = (
            f"{text} is {produced}, but the input schema of {report.task!r} requires {wanted} "
            f"at {place}: {detail} (input schema {where})"
        )
        error = m.kind == "incompatible"
        code = "incompatible_types" if error else "undecidable_compatibility"
        report.add(
            error,
            code,
            message,
            ref.pointer,
            edge=f"{ref.task} -> {report.task}",
            expected=m.expected,
            actual=m.actual,
        )


def _instance_text(instance: str) -> str:
    text = ""
    for part in split_pointer(instance):
        text += f"[{part}]" if part == "*" or part.isdigit() else f".{part}"
    return text


def _value_at(body: object, path: tuple[str | int, ...]) -> str:
    for part in path:
        if isinstance(body, dict) and part in body:
            body = body[part]
        elif isinstance(body, list) and isinstance(part, int) and 0 <= part < len(body):
            body = body[part]
        else:
            return ""
    return body if isinstance(body, str) else ""


def _check_expression(report: Report, ref: Reference, position: Any, text: str) -> None:
    """One ``{{ expr }}`` that is more than a plain reference: typed, but only at run time."""
    try:
        if is_trivial(deref(position.node).schema):
            return
    except UnresolvedRef:
        pass
    message = (
        f"the template at {ref.pointer} transforms {text} (a filter, test or operator), so "
        f"whether its value fits the input schema of {report.task!r} at "
        f"{position.pointer or '/'} ({describe(position.node)}) is known only at run time, when "
        "the rendered body is validated before it is sent"
    )
    edge = f"{ref.task} -> {report.task}"
    report.add(False, "undecidable_compatibility", message, ref.pointer, edge=edge)


def _check_interpolated(report: Report, ref: Reference, position: Any, text: str) -> None:
    kinds = consumer_kinds(position.node)
    if "string" in kinds:
        return
    wanted = " or ".join(type_names(kinds)) or "no value"
    message = (
        f"the template at {ref.pointer} mixes text with {text}, so it renders a string, "
        f"but the input schema of {report.task!r} requires {wanted} there "
        f"(input schema {position.pointer or '/'}); use exactly one {{{{ ... }}}} to pass "
        "the value itself"
    )
    report.add(
        True,
        "incompatible_types",
        message,
        ref.pointer,
        edge=f"{ref.task} -> {report.task}",
        expected=type_names(kinds),
        actual="string",
    )


#: the problem code of a path its variable's schema does not declare
_UNKNOWN_VARIABLE_PATH = {"params": "unknown_param"}


def check_variables(
    *,
    task: str,
    task_index: int,
    input_schema: dict[str, Any] | bool | None,
    body: object,
    refs: list[VariableReference],
    variables: dict[str, Any],
) -> tuple[list[Problem], list[Problem]]:
    """The errors and warnings of a task's reads of typed variables: ``params.a`` against a
    definition's ``params_schema``, ``item.a`` against the ``items`` schema of a ``for_each``
    source. ``variables`` maps each typed variable to its schema; other reads are not checked."""
    report = Report(task, task_index)
    for ref in refs:
        if ref.root in variables:
            _check_variable(report, ref, variables[ref.root], input_schema, body)
    return report.errors, report.warnings


def for_each_items(output_schema: Any, path: tuple[str | int, ...]) -> tuple[str, Any]:
    """What a ``for_each`` over ``tasks.X.output<path>`` iterates, by X's output schema:
    ``("items", node)`` (the schema of one item, a :class:`Node`), ``("not_array", text)`` when
    the schema says the value is not an array, ``("unknown", None)`` when it cannot be told."""
    found, _ = lookup_output_path(Node(output_schema, output_schema), path)
    if found is None:
        return "unknown", None
    try:
        schema = deref(found).schema
    except UnresolvedRef:
        return "unknown", None
    declared = schema.get("type") if isinstance(schema, dict) else None
    kinds = {declared} if isinstance(declared, str) else set(declared or ())
    if kinds and "array" not in kinds:
        return "not_array", describe(found)
    item, _ = lookup_output_path(found, (0,))
    return ("items", item) if item is not None else ("unknown", None)


def _check_variable(
    report: Report, ref: VariableReference, schema: Any, input_schema: Any, body: object
) -> None:
    text = format_path(ref.path, ref.root)
    start = schema if isinstance(schema, Node) else Node(schema, schema)
    found, lookup = lookup_output_path(start, ref.path)
    if lookup.status == "missing":
        what = "params_schema" if ref.root == "params" else f"the schema of {ref.root!r}"
        report.add(
            True,
            _UNKNOWN_VARIABLE_PATH.get(ref.root, "unknown_output_path"),
            f"{text} does not exist in {what}: {lookup.reason.replace('output', ref.root, 1)}",
            ref.pointer,
            expected=list(lookup.declared),
            actual=text,
        )
        return
    if found is None or ref.dynamic or input_schema is None or ref.body_path is None:
        return
    if not ref.whole:
        return
    position = input_position(input_schema, ref.body_path)
    if position.status != "found":
        return
    as_ref = Reference(
        task=ref.root,
        attr="output",
        path=ref.path,
        pointer=ref.pointer,
        body_path=ref.body_path,
        whole=True,
    )
    _check_whole(report, as_ref, found, position, text)
