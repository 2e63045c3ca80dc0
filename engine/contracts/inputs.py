"""Body-level interface checks: the body a task sends, against the task's input schema.

Literal parts of the body are validated with the real draft-07 validator; templated parts are
walked structurally (required properties, forbidden keys, container types), their references
being checked one by one by :func:`engine.contracts.check_task`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.contracts.compat import consumer_kinds
from engine.contracts.paths import InputPosition, input_position
from engine.contracts.tools import (
    MAX_LOOKUP_DEPTH,
    SCHEMA_FAILURES,
    Node,
    UnresolvedRef,
    as_dict,
    as_list,
    clip,
    deref,
    matches,
    node_validator,
    type_names,
)
from engine.errors import Problem
from engine.jsonpointer import join_pointer
from engine.templates import has_template


@dataclass
class Report:
    task: str
    task_index: int
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, error: bool, code: str, message: str, location: str, **extra: Any) -> None:
        key = (code, location, message)
        if key in self.seen:
            return
        self.seen.add(key)
        problem = Problem(code=code, message=message, location=location, task=self.task, **extra)
        (self.errors if error else self.warnings).append(problem)

    def body_at(self, path: tuple[str | int, ...]) -> str:
        return f"/tasks/{self.task_index}/body{join_pointer(path)}"


def check_body(report: Report, schema: Any, body: object) -> None:
    if body is None:
        names = sorted(required_names(Node(schema, schema)))
        for name in names:
            message = f"the task sends no body, but its input schema requires property {name!r}"
            report.add(
                True,
                "missing_input_property",
                message,
                report.body_at(()),
                expected=name,
                actual=None,
            )
        if not names:
            _check_no_body(report, schema)
        return
    _walk(report, input_position(schema, ()), body, ())


def _check_no_body(report: Report, schema: Any) -> None:
    """The worker validates the absent body as ``null``: say so now if that must fail."""
    try:
        errors = list(node_validator(Node(schema, schema)).iter_errors(None))
    except SCHEMA_FAILURES:
        return
    if errors:
        message = (
            "the task sends no body, but its input schema does not accept null: "
            f"{clip(errors[0].message)}"
        )
        report.add(
            True,
            "invalid_input_literal",
            message,
            report.body_at(()),
            expected=errors[0].validator_value,
            actual=None,
        )


def _walk(
    report: Report,
    position: InputPosition,
    value: object,
    path: tuple[str | int, ...],
) -> None:
    if not has_template(value):
        _check_literal(report, position, value, path)
        return
    if isinstance(value, str):
        return  # a template: its references are checked one by one
    kind = "object" if isinstance(value, dict) else "array"
    kinds = consumer_kinds(position.node)
    if kind not in kinds:
        wanted = " or ".join(type_names(kinds)) or "no value"
        message = (
            f"body{join_pointer(path)} is an {kind}, but the input schema of {report.task!r} "
            f"requires {wanted} there"
        )
        report.add(
            True,
            "invalid_input_literal",
            message,
            report.body_at(path),
            expected=type_names(kinds),
            actual=kind,
        )
        return
    if isinstance(value, dict):
        _check_required(report, position.node, value, path)
    children: list[tuple[Any, object]] = (
        list(value.items()) if isinstance(value, dict) else list(enumerate(as_list(value)))
    )
    for key, sub in children:
        child = position.child(key)
        if child.status == "found":
            _walk(report, child, sub, (*path, key))
        elif child.status == "unexpected":
            _unexpected(report, (*path, key), child.reason)


def _check_required(
    report: Report, node: Node, value: dict[str, Any], path: tuple[str | int, ...]
) -> None:
    for name in sorted(required_names(node) - set(value)):
        message = _lacks(report, path, name)
        report.add(
            True,
            "missing_input_property",
            message,
            report.body_at(path),
            expected=name,
            actual=sorted(value),
        )


def _unexpected(report: Report, path: tuple[str | int, ...], reason: str) -> None:
    message = (
        f"body{join_pointer(path)} is not accepted by the input schema of {report.task!r}: {reason}"
    )
    report.add(True, "unexpected_input_property", message, report.body_at(path), actual=path[-1])


def _check_literal(
    report: Report, position: Any, value: object, path: tuple[str | int, ...]
) -> None:
    node = position.node
    try:
        errors = list(node_validator(node).iter_errors(value))
    except SCHEMA_FAILURES as exc:
        message = (
            f"body{join_pointer(path)} could not be checked against the input schema of "
            f"{report.task!r}: {exc}"
        )
        report.add(False, "undecidable_compatibility", message, report.body_at(path))
        return
    for error in errors:
        where = (*path, *error.absolute_path)
        if error.validator == "required":
            _check_keys_literal(report, error, where)
        elif error.validator == "additionalProperties" and error.validator_value is False:
            for key in _extra_keys(error.schema, error.instance):
                message = (
                    f"body{join_pointer((*where, key))} is not accepted by the input schema of "
                    f"{report.task!r} (additionalProperties is false)"
                )
                report.add(
                    True,
                    "unexpected_input_property",
                    message,
                    report.body_at((*where, key)),
                    actual=key,
                )
        else:
            rule = position.pointer + join_pointer(tuple(error.relative_schema_path)[:-1])
            message = (
                f"body{join_pointer(where)} does not match the input schema of {report.task!r}: "
                f"{clip(error.message)} (keyword {error.validator!r}, input schema {rule or '/'})"
            )
            report.add(
                True,
                "invalid_input_literal",
                message,
                report.body_at(where),
                expected=error.validator_value,
                actual=error.instance,
            )


def _check_keys_literal(report: Report, error: Any, where: tuple[str | int, ...]) -> None:
    present = set(error.instance) if isinstance(error.instance, dict) else set()
    for name in error.validator_value:
        if name not in present:
            message = _lacks(report, where, name)
            report.add(
                True,
                "missing_input_property",
                message,
                report.body_at(where),
                expected=name,
                actual=sorted(present),
            )


def _extra_keys(schema: dict[str, Any], instance: dict[str, Any]) -> list[str]:
    props, patterns = as_dict(schema.get("properties")), as_dict(schema.get("patternProperties"))
    return [k for k in instance if k not in props and not any(matches(p, k) for p in patterns)]


def required_names(node: Node, depth: int = 0) -> set[str]:
    """Names a schema requires: its own, its ``allOf``'s, those all ``anyOf`` branches require."""
    try:
        node = deref(node)
    except UnresolvedRef:
        return set()
    schema = node.schema
    if not isinstance(schema, dict) or depth > MAX_LOOKUP_DEPTH:
        return set()
    names = {n for n in as_list(schema.get("required")) if isinstance(n, str)}
    for sub in as_list(schema.get("allOf")):
        names |= required_names(Node(sub, node.root), depth + 1)
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            names |= set.intersection(
                *(required_names(Node(b, node.root), depth + 1) for b in branches)
            )
    return names


def _lacks(report: Report, path: tuple[str | int, ...], name: str) -> str:
    return (
        f"body{join_pointer(path)} does not provide property {name!r}, which the input schema of "
        f"{report.task!r} requires"
    )
