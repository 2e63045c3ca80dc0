"""The interface checker: compatibility, output paths, the per-task report, run-time checks."""

from __future__ import annotations

import copy
from typing import Any, Literal

import pytest
from jsonschema import Draft7Validator

from engine.contracts.checks import (
    check_task,
    compare,
    resolve_output_path,
    schema_problems,
    validate_instance,
)
from engine.contracts.tools import validator
from engine.errors import Problem
from engine.templates.references import Reference

OK, NO, MAYBE = "compatible", "incompatible", "undecidable"
INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}


def obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required is not None:
        schema["required"] = required
    return schema


def arr(items: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **extra}


NODE_DEFS = {
    "node": obj({"value": INT, "children": arr({"$ref": "#/definitions/node"})}, ["value"])
}
TREE = {"definitions": NODE_DEFS, "$ref": "#/definitions/node"}

# (id, producer, consumer, expected verdict)
PAIRS: list[tuple[str, Any, Any, str]] = [
    # --- type, integer within number, nullable via type lists
    ("integer-to-number", INT, NUM, OK),
    ("number-to-integer", NUM, INT, NO),
    ("integer-to-integer", INT, INT, OK),
    ("string-to-integer", STR, INT, NO),
    ("nullable-to-nullable", {"type": ["string", "null"]}, {"type": ["null", "string"]}, OK),
    ("nullable-to-non-null", {"type": ["string", "null"]}, STR, NO),
    ("string-to-nullable", STR, {"type": ["string", "null"]}, OK),
    ("null-to-null", {"type": "null"}, {"type": "null"}, OK),
    ("boolean-to-type-list", {"type": "boolean"}, {"type": ["boolean", "string"]}, OK),
    ("integral-multiple-is-integer", {"type": "number", "multipleOf": 1}, INT, OK),
    ("integer-list-to-number", {"type": ["integer", "string"]}, {"type": ["number", "string"]}, OK),
    (
        "number-list-to-integer-list",
        {"type": ["number", "null"]},
        {"type": ["integer", "null"]},
        NO,
    ),
    # --- boolean and empty schemas
    ("empty-producer-is-silent", {}, INT, MAYBE),
    ("true-producer-is-silent", True, INT, MAYBE),
    ("anything-to-true", INT, True, OK),
    ("anything-to-empty", STR, {}, OK),
    ("annotations-only-consumer", STR, {"title": "t", "description": "d", "default": 1}, OK),
    ("true-to-true", True, True, OK),
    ("false-producer", False, INT, OK),
    ("false-to-false", False, False, OK),
    ("string-to-false", STR, False, NO),
    ("untyped-producer-to-object", {"properties": {"a": INT}}, {"type": "object"}, MAYBE),
    ("empty-type-intersection", {"allOf": [STR, INT]}, {"type": "null"}, OK),
    # --- objects
    ("required-declared", obj({"a": INT}, ["a"]), obj({"a": NUM}, ["a"]), OK),
    ("required-missing", obj({"a": INT}), obj({"a": INT}, ["a"]), NO),
    ("required-unknown-property", obj({"a": INT}, ["a"]), obj({}, ["a", "b"]), NO),
    (
        "nested-object-ok",
        obj({"a": obj({"b": INT}, ["b"])}, ["a"]),
        obj({"a": obj({"b": NUM})}),
        OK,
    ),
    (
        "nested-object-type",
        obj({"a": obj({"b": STR}, ["b"])}, ["a"]),
        obj({"a": obj({"b": INT})}),
        NO,
    ),
    (
        "closed-into-closed",
        obj({"a": INT}, ["a"], additionalProperties=False),
        obj({"a": INT, "b": STR}, additionalProperties=False),
        OK,
    ),
    (
        "closed-extra-key",
        obj({"a": INT, "c": STR}, additionalProperties=False),
        obj({"a": INT}, additionalProperties=False),
        NO,
    ),
    ("open-into-closed", obj({"a": INT}), obj({"a": INT}, additionalProperties=False), MAYBE),
    (
        "typed-extras-match",
        {"type": "object", "additionalProperties": STR},
        {"type": "object", "additionalProperties": STR},
        OK,
    ),
    (
        "typed-extras-differ",
        {"type": "object", "additionalProperties": INT},
        {"type": "object", "additionalProperties": STR},
        NO,
    ),
    (
        "typed-extras-into-closed",
        {"type": "object", "additionalProperties": INT},
        obj({}, additionalProperties=False),
        NO,
    ),
    ("undeclared-optional-property", obj({"a": INT}), obj({"a": INT, "b": STR}), MAYBE),
    (
        "closed-never-sends-property",
        obj({"a": INT}, additionalProperties=False),
        obj({"a": INT, "b": STR}),
        OK,
    ),
    ("required-but-forbidden", obj({"a": INT}, additionalProperties=False), obj({}, ["b"]), NO),
    (
        "declared-key-against-consumer-extras",
        obj({"a": INT, "b": INT}, additionalProperties=False),
        obj({"a": INT}, additionalProperties=STR),
        NO,
    ),
    (
        "pattern-properties-closed",
        obj({"x_a": INT}, additionalProperties=False),
        {"type": "object", "patternProperties": {"^x_": NUM}},
        OK,
    ),
    (
        "pattern-properties-open",
        obj({"x_a": INT}),
        {"type": "object", "patternProperties": {"^x_": NUM}},
        MAYBE,
    ),
    # --- arrays
    ("array-int-to-number", arr(INT), arr(NUM), OK),
    ("array-number-to-int", arr(NUM), arr(INT), NO),
    ("array-of-objects", arr(obj({"id": INT}, ["id"])), arr(obj({"id": NUM}, ["id"])), OK),
    ("array-of-objects-missing-required", arr(obj({"id": INT})), arr(obj({"id": INT}, ["id"])), NO),
    (
        "tuple-into-tuple",
        {"type": "array", "items": [INT, STR], "additionalItems": False},
        {"type": "array", "items": [NUM, STR]},
        OK,
    ),
    (
        "tuple-into-items",
        {"type": "array", "items": [INT, STR], "additionalItems": False},
        arr(INT),
        NO,
    ),
    ("tuple-open-tail", {"type": "array", "items": [INT]}, arr(INT), MAYBE),
    ("min-items-ok", arr(INT, minItems=2), arr(INT, minItems=1), OK),
    ("min-items-missing", arr(INT), arr(INT, minItems=1), NO),
    ("max-items-ok", arr(INT, maxItems=3), arr(INT, maxItems=5), OK),
    ("max-items-unbounded", arr(INT), arr(INT, maxItems=5), NO),
    ("array-without-items", {"type": "array"}, arr(INT), MAYBE),
    ("array-without-items-to-any-array", {"type": "array"}, {"type": "array"}, OK),
    (
        "closed-tuple-consumer-ok",
        arr(INT, maxItems=2),
        {"type": "array", "items": [NUM, NUM], "additionalItems": False},
        OK,
    ),
    (
        "closed-tuple-consumer-too-long",
        arr(INT),
        {"type": "array", "items": [INT], "additionalItems": False},
        NO,
    ),
    (
        "tuple-consumer-extra-items",
        arr(INT),
        {"type": "array", "items": [INT], "additionalItems": STR},
        NO,
    ),
    ("nested-arrays", arr(arr(INT)), arr(arr(NUM)), OK),
    ("nested-arrays-mismatch", arr(arr(NUM)), arr(arr(INT)), NO),
    # --- enum and const
    ("enum-subset", {"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, OK),
    ("enum-not-subset", {"enum": ["a", "b", "x"]}, {"enum": ["a", "b", "c"]}, NO),
    ("const-in-enum", {"const": "b"}, {"enum": ["a", "b"]}, OK),
    ("const-differs", {"const": "b"}, {"const": "a"}, NO),
    ("string-into-enum", STR, {"enum": ["a"]}, NO),
    ("boolean-into-both", {"type": "boolean"}, {"enum": [True, False]}, OK),
    ("boolean-into-true", {"type": "boolean"}, {"const": True}, NO),
    ("enum-against-bounds", {"enum": [1, 2]}, {"type": "integer", "minimum": 1}, OK),
    ("enum-against-pattern", {"enum": ["ab", "ac"]}, {"type": "string", "pattern": "^a"}, OK),
    ("enum-bool-is-not-int", {"enum": [True]}, {"enum": [1]}, NO),
    ("enum-filtered-by-type", {"type": "string", "enum": ["a", 1]}, STR, OK),
    # --- numbers
    (
        "bounds-inside",
        {**INT, "minimum": 0, "maximum": 10},
        {**INT, "minimum": 0, "maximum": 100},
        OK,
    ),
    ("bounds-missing", INT, {**INT, "minimum": 0}, NO),
    ("bounds-too-wide", {**INT, "maximum": 1000}, {**INT, "maximum": 100}, NO),
    ("integer-exclusive-min", {**INT, "exclusiveMinimum": 0}, {**NUM, "minimum": 1}, OK),
    ("number-exclusive-min", {**NUM, "exclusiveMinimum": 0}, {**NUM, "minimum": 1}, NO),
    ("inclusive-vs-exclusive", {**NUM, "minimum": 0}, {**NUM, "exclusiveMinimum": 0}, NO),
    ("exclusive-vs-exclusive", {**NUM, "exclusiveMinimum": 0}, {**NUM, "exclusiveMinimum": 0}, OK),
    ("integer-max-vs-exclusive-max", {**INT, "maximum": 10}, {**INT, "exclusiveMaximum": 11}, OK),
    (
        "fractional-bounds",
        {**NUM, "minimum": 0.5, "maximum": 1.5},
        {**NUM, "minimum": 0.25, "maximum": 2},
        OK,
    ),
    ("multiple-of-multiple", {**INT, "multipleOf": 4}, {**INT, "multipleOf": 2}, OK),
    ("integer-multiple-of-half", INT, {**NUM, "multipleOf": 0.5}, OK),
    ("multiple-of-three-undecided", INT, {**INT, "multipleOf": 3}, MAYBE),
    ("bounds-apply-to-numbers-only", STR, {"minimum": 5}, OK),
    # --- strings
    ("min-length-ok", {**STR, "minLength": 3}, {**STR, "minLength": 1}, OK),
    ("max-length-unbounded", STR, {**STR, "maxLength": 10}, NO),
    ("max-length-ok", {**STR, "maxLength": 5}, {**STR, "maxLength": 10}, OK),
    ("same-pattern", {**STR, "pattern": "^[a-z]+$"}, {**STR, "pattern": "^[a-z]+$"}, OK),
    ("other-pattern", {**STR, "pattern": "^[a-z]+$"}, {**STR, "pattern": "^a"}, MAYBE),
    ("format", STR, {**STR, "format": "date-time"}, MAYBE),
    ("same-format", {**STR, "format": "email"}, {**STR, "format": "email"}, OK),
    ("pattern-skips-integers", INT, {"pattern": "^a"}, OK),
    ("producer-narrowing-ignored", {**STR, "pattern": "^x", "format": "uri"}, STR, OK),
    # --- $ref on both sides
    ("producer-ref", {"definitions": {"n": INT}, "$ref": "#/definitions/n"}, NUM, OK),
    ("consumer-ref", arr(STR), {"definitions": {"ids": arr(INT)}, "$ref": "#/definitions/ids"}, NO),
    ("recursive-both", TREE, TREE, OK),
    (
        "recursive-mismatch",
        TREE,
        {
            "definitions": {"n": obj({"value": STR, "children": arr({"$ref": "#/definitions/n"})})},
            "$ref": "#/definitions/n",
        },
        NO,
    ),
    (
        "defs-style-ref",
        {"$defs": {"x": INT}, "$ref": "#/$defs/x"},
        {"$defs": {"y": NUM}, "$ref": "#/$defs/y"},
        OK,
    ),
    ("unresolvable-consumer-ref", INT, {"$ref": "#/definitions/missing"}, MAYBE),
    ("remote-ref-never-fetched", INT, {"$ref": "https://example.org/schema.json"}, MAYBE),
    (
        "ref-into-properties",
        obj({"a": {"$ref": "#/definitions/a"}}, ["a"], definitions={"a": INT}),
        obj({"a": NUM}, ["a"]),
        OK,
    ),
    # --- allOf on both sides
    (
        "producer-allof-merges",
        {"allOf": [obj({"a": INT}, ["a"]), obj({"b": STR}, ["b"])]},
        obj({"a": NUM, "b": STR}, ["a", "b"]),
        OK,
    ),
    (
        "consumer-allof-ok",
        obj({"a": INT}, ["a"]),
        {"allOf": [{"type": "object", "required": ["a"]}, obj({"a": NUM})]},
        OK,
    ),
    (
        "consumer-allof-one-fails",
        obj({"a": INT}, ["a"]),
        {"allOf": [{"required": ["a"]}, obj({"a": STR})]},
        NO,
    ),
    (
        "producer-allof-bounds",
        {"allOf": [{**INT, "minimum": 0}, {"maximum": 5}]},
        {**INT, "minimum": 0, "maximum": 5},
        OK,
    ),
    # --- anyOf / oneOf
    ("producer-anyof-each-fits", {"anyOf": [INT, STR]}, {"type": ["integer", "string"]}, OK),
    ("producer-anyof-one-misfits", {"anyOf": [INT, {"type": "object"}]}, INT, NO),
    ("consumer-anyof-branch-fits", INT, {"anyOf": [STR, INT]}, OK),
    ("consumer-anyof-type-uncovered", INT, {"anyOf": [STR, {"type": "null"}]}, NO),
    ("consumer-anyof-unprovable", STR, {"anyOf": [{**STR, "pattern": "^a"}, INT]}, MAYBE),
    ("consumer-anyof-split-by-type", {"type": ["string", "integer"]}, {"anyOf": [STR, INT]}, OK),
    ("nullable-via-anyof", {"type": ["string", "null"]}, {"anyOf": [STR, {"type": "null"}]}, OK),
    (
        "consumer-oneof-disjoint",
        {"type": ["string", "null"]},
        {"oneOf": [STR, {"type": "null"}]},
        OK,
    ),
    ("consumer-oneof-overlap", INT, {"oneOf": [NUM, INT]}, MAYBE),
    (
        "consumer-oneof-discriminated",
        obj({"kind": {"const": "a"}, "x": INT}, ["kind", "x"]),
        {
            "oneOf": [
                obj({"kind": {"const": "a"}, "x": NUM}, ["kind"]),
                obj({"kind": {"const": "b"}}, ["kind"]),
            ]
        },
        OK,
    ),
    (
        "producer-oneof-as-union",
        {"oneOf": [INT, {"type": "null"}]},
        {"type": ["number", "null"]},
        OK,
    ),
    # --- not, if/then/else and the other keywords
    ("not-disjoint", INT, {"not": STR}, OK),
    ("not-overlapping", NUM, {"not": INT}, MAYBE),
    (
        "if-then-else",
        STR,
        {"if": {"minLength": 3}, "then": {"maxLength": 5}, "else": {"const": "x"}},
        MAYBE,
    ),
    ("if-outside-condition", INT, {"if": STR, "then": {"minLength": 1}}, OK),
    ("if-inside-condition", {**STR, "minLength": 2}, {"if": STR, "then": {"minLength": 1}}, OK),
    ("if-alone-is-no-op", INT, {"if": STR}, OK),
    ("contains", arr(INT), {"type": "array", "contains": {"const": 1}}, MAYBE),
    ("contains-implied", arr({"const": 1}, minItems=1), {"type": "array", "contains": NUM}, OK),
    ("unique-items", arr(INT), {"type": "array", "uniqueItems": True}, MAYBE),
    (
        "dependencies",
        obj({"a": INT, "b": INT}),
        {"type": "object", "dependencies": {"a": ["b"]}},
        MAYBE,
    ),
    (
        "dependencies-met",
        obj({"a": INT, "b": INT}, ["b"]),
        {"type": "object", "dependencies": {"a": ["b"]}},
        OK,
    ),
    (
        "property-names-closed",
        obj({"ab": INT}, additionalProperties=False),
        {"type": "object", "propertyNames": {"maxLength": 3}},
        OK,
    ),
    (
        "property-names-rejected",
        obj({"abcd": INT}, additionalProperties=False),
        {"type": "object", "propertyNames": {"maxLength": 3}},
        NO,
    ),
    ("min-properties", obj({"a": INT}), {"type": "object", "minProperties": 1}, MAYBE),
    ("min-properties-met", obj({"a": INT}, ["a"]), {"type": "object", "minProperties": 1}, OK),
    ("producer-not-downgrades", {"type": ["integer", "string"], "not": STR}, INT, MAYBE),
    ("unknown-keyword-ignored", INT, {"type": "integer", "x-vendor": {"anything": 1}}, OK),
]


@pytest.mark.parametrize(
    ("producer", "consumer", "expected"),
    [pytest.param(p, c, e, id=name) for name, p, c, e in PAIRS],
)
def test_compare(producer: Any, consumer: Any, expected: str) -> None:
    verdict = compare(producer, consumer)
    assert verdict.status == expected, verdict.reasons
    if expected == OK:
        assert verdict.reasons == []
    else:
        assert verdict.reasons
        assert all(m.message for m in verdict.reasons)


def test_table_is_large_and_covers_every_verdict() -> None:
    assert len(PAIRS) >= 60
    assert len({name for name, *_ in PAIRS}) == len(PAIRS)
    assert {e for *_, e in PAIRS} == {OK, NO, MAYBE}


def test_compare_does_not_mutate_its_inputs() -> None:
    pairs = copy.deepcopy(PAIRS)
    for _, producer, consumer, _ in pairs:
        compare(producer, consumer)
    assert pairs == PAIRS


def test_compare_collects_every_mismatch() -> None:
    producer = obj({"a": STR, "b": NUM, "c": arr(STR)})
    consumer = obj({"a": INT, "b": INT, "c": arr(INT)}, ["a", "b"])
    verdict = compare(producer, consumer)
    assert verdict.status == NO
    pointers = sorted(m.pointer for m in verdict.reasons)
    assert pointers == [
        "/properties/a/type",
        "/properties/b/type",
        "/properties/c/items/type",
        "/required",
        "/required",
    ]
    item = next(m for m in verdict.reasons if m.pointer.endswith("items/type"))
    assert (item.expected, item.actual, item.instance) == ("integer", "string", "/c/*")


def test_mismatch_names_the_undecided_keyword() -> None:
    verdict = compare(STR, {**STR, "pattern": "^a", "format": "email"})
    assert verdict.status == MAYBE
    assert {m.pointer for m in verdict.reasons} == {"/pattern", "/format"}
    assert all(m.kind == "undecidable" for m in verdict.reasons)


def test_incompatible_verdict_keeps_undecidable_reasons_too() -> None:
    verdict = compare(
        obj({"a": STR, "b": STR}, ["a", "b"]), obj({"a": INT, "b": {**STR, "pattern": "x"}})
    )
    assert verdict.status == NO
    assert {m.kind for m in verdict.reasons} == {"incompatible", "undecidable"}


def test_roots_resolve_refs_of_sub_schemas() -> None:
    producer_root = {
        "definitions": {"id": INT},
        "properties": {"ids": arr({"$ref": "#/definitions/id"})},
    }
    consumer_root = {
        "definitions": {"id": NUM},
        "properties": {"ids": arr({"$ref": "#/definitions/id"})},
    }
    verdict = compare(
        producer_root["properties"]["ids"],
        consumer_root["properties"]["ids"],
        producer_root=producer_root,
        consumer_root=consumer_root,
    )
    assert verdict.status == OK


@pytest.mark.parametrize(
    "consumer",
    [
        {"$ref": "#"},
        {"allOf": [{"$ref": "#"}]},
        {"type": 5, "properties": 3, "items": "x", "required": "a", "enum": 1, "minimum": "x"},
        {"anyOf": "nope", "oneOf": [], "allOf": {}, "not": 1},
        {"pattern": "(", "type": "string"},
    ],
)
def test_malformed_or_looping_schemas_never_raise(consumer: Any) -> None:
    for producer in (STR, consumer, {"enum": ["a"]}):
        assert compare(producer, consumer).status in (OK, NO, MAYBE)


def test_too_many_producer_alternatives_is_undecidable() -> None:
    branches = {"anyOf": [{"const": i} for i in range(9)]}
    producer = {"allOf": [branches, branches, branches]}
    assert compare(producer, INT).status == MAYBE


# --------------------------------------------------------------------------- output paths

SEARCH_OUT = {
    "definitions": {"hit": obj({"id": INT, "title": STR}, ["id"])},
    "type": "object",
    "properties": {
        "results": arr(STR),
        "count": INT,
        "hits": arr({"$ref": "#/definitions/hit"}),
        "pair": {"type": "array", "items": [INT, STR], "additionalItems": False},
        "meta": {"type": "object"},
        "tags": {"type": "object", "additionalProperties": STR},
        "labels": {"type": "object", "patternProperties": {"^l_": INT}},
        "free": {"type": "object", "properties": {}, "additionalProperties": True},
        "top3": arr(INT, maxItems=3),
        "name": STR,
    },
    "required": ["results", "count"],
}


@pytest.mark.parametrize(
    ("path", "status", "schema"),
    [
        ((), "found", SEARCH_OUT),
        (("results",), "found", arr(STR)),
        (("results", 0), "found", STR),
        (("hits", 2, "title"), "found", STR),
        (("pair", 1), "found", STR),
        (("tags", "anything"), "found", STR),
        (("labels", "l_x"), "found", INT),
        (("top3", 2), "found", INT),
        (("missing",), "missing", None),
        (("hits", 0, "nope"), "missing", None),
        (("pair", 2), "missing", None),
        (("top3", 3), "missing", None),
        (("name", "first"), "missing", None),
        (("count", 0), "missing", None),
        (("meta", "x"), "undecidable", None),
        (("free", "x"), "undecidable", None),
        (("labels", "other"), "missing", None),
    ],
)
def test_resolve_output_path(path: tuple[Any, ...], status: str, schema: Any) -> None:
    lookup = resolve_output_path(SEARCH_OUT, path)
    assert lookup.status == status, lookup.reason
    if schema is not None:
        assert lookup.schema == schema
    if status != "found":
        assert lookup.reason


def test_missing_path_says_what_is_declared() -> None:
    lookup = resolve_output_path(SEARCH_OUT, ("hits", 0, "nope"))
    assert lookup.declared == ("id", "title")
    assert lookup.depth == 2
    assert "output.hits[0]" in lookup.reason and "'nope'" in lookup.reason


@pytest.mark.parametrize(
    ("schema", "path", "status"),
    [
        ({}, ("a",), "undecidable"),
        (True, ("a",), "undecidable"),
        ({"type": "object"}, ("a",), "undecidable"),
        (False, ("a",), "missing"),
        ({"type": "object", "required": ["a"]}, ("a",), "found"),
        (obj({"a": INT}, additionalProperties=False), ("b",), "missing"),
        ({"allOf": [obj({"a": INT}), obj({"b": STR})]}, ("b",), "found"),
        ({"anyOf": [obj({"a": INT}), obj({"a": STR})]}, ("a",), "found"),
        ({"anyOf": [obj({"a": INT}), obj({"b": STR})]}, ("a",), "undecidable"),
        ({"oneOf": [obj({"a": INT}), obj({"b": STR})]}, ("c",), "missing"),
        ({"$defs": {"o": obj({"a": INT})}, "$ref": "#/$defs/o"}, ("a",), "found"),
        ({"$ref": "#/definitions/nowhere"}, ("a",), "undecidable"),
        ({"type": "array"}, (0,), "undecidable"),
        ({"type": "array", "items": [INT]}, (1,), "missing"),
        ({"type": "array", "items": [INT], "additionalItems": STR}, (5,), "found"),
        (obj({"a": INT}, patternProperties={"(": INT}), ("b",), "undecidable"),
    ],
)
def test_resolve_output_path_rules(schema: Any, path: tuple[Any, ...], status: str) -> None:
    assert resolve_output_path(schema, path).status == status


def test_resolve_anyof_found_in_every_branch_gives_both() -> None:
    lookup = resolve_output_path({"anyOf": [obj({"a": INT}), obj({"a": STR})]}, ("a",))
    assert lookup.schema == {"anyOf": [INT, STR]}


# --------------------------------------------------------------------------- schema_problems


def test_valid_schemas_have_no_problems() -> None:
    assert schema_problems(SEARCH_OUT, location="/x", task="t") == []
    assert schema_problems(True, location="/x", task="t") == []


def test_schema_problem_names_the_keyword_and_its_path() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "strin"}, "b": {"minimum": "x"}}}
    problems = schema_problems(schema, location="/tasks/0/input_schema", task="t")
    assert [p.location for p in problems] == [
        "/tasks/0/input_schema/properties/a/type",
        "/tasks/0/input_schema/properties/b/minimum",
    ]
    assert all(p.code == "invalid_schema" and p.task == "t" for p in problems)
    assert "'type'" in problems[0].message and "/properties/a/type" in problems[0].message
    assert "'strin' is not one of" in problems[0].message
    assert "'minimum'" in problems[1].message
    assert problems[0].actual == '"strin"'


def test_schema_problem_for_a_property_that_is_not_a_schema() -> None:
    [problem] = schema_problems({"properties": {"a": 5}}, location="", task=None)
    assert "'properties'" in problem.message and problem.location == "/properties/a"


def test_schema_problems_bad_regex_and_dangling_ref() -> None:
    schema = {
        "pattern": "(",
        "properties": {"a": {"$ref": "#/definitions/none"}},
        "enum": [{"$ref": "x"}],
    }
    problems = schema_problems(schema, location="", task=None)
    assert {p.location for p in problems} == {"/pattern", "/properties/a/$ref"}
    assert any("'pattern'" in p.message for p in problems)


@pytest.mark.parametrize("schema", [5, "string", None, [1]])
def test_schema_must_be_object_or_boolean(schema: object) -> None:
    [problem] = schema_problems(schema, location="/s", task="t")
    assert problem.code == "invalid_schema" and problem.location == "/s"
    assert "object or a boolean" in problem.message


# --------------------------------------------------------------------------- check_task


def ref(
    path: tuple[Any, ...],
    body_path: tuple[Any, ...] | None,
    *,
    task: str = "search",
    attr: Literal["output", "status_code", "headers"] = "output",
    whole: bool = True,
    dynamic: bool = False,
    pointer: str | None = None,
) -> Reference:
    if pointer is None:
        pointer = "/tasks/1/body" + "".join(f"/{p}" for p in body_path or ())
    return Reference(
        task=task,
        attr=attr,
        path=path,
        pointer=pointer,
        body_path=body_path,
        whole=whole,
        dynamic=dynamic,
    )


ENRICH_IN = {
    "type": "object",
    "properties": {
        "ids": arr(INT),
        "n": {**INT, "minimum": 0},
        "label": STR,
        "code": INT,
        "mode": {"enum": ["fast", "slow"]},
        "opts": obj({"depth": INT, "lang": STR}, ["depth"], additionalProperties=False),
        "names": arr(STR),
    },
    "required": ["ids", "n"],
    "additionalProperties": False,
}


def run(
    body: Any,
    refs: list[Reference],
    *,
    input_schema: Any = ENRICH_IN,
    upstream: dict[str, Any] | None = None,
) -> tuple[list[Problem], list[Problem]]:
    return check_task(
        task="enrich",
        task_index=1,
        input_schema=input_schema,
        body=body,
        refs=refs,
        upstream_outputs={"search": SEARCH_OUT} if upstream is None else upstream,
    )


def test_compatible_task_has_no_problems() -> None:
    schema = {
        **SEARCH_OUT,
        "properties": {**SEARCH_OUT["properties"], "count": {**INT, "minimum": 0}},
    }
    body = {"ids": "{{ tasks.search.output.top3 }}", "n": "{{ tasks.search.output.count }}"}
    refs = [ref(("top3",), ("ids",)), ref(("count",), ("n",))]
    assert run(body, refs, upstream={"search": schema}) == ([], [])


def test_incompatible_types_with_location_edge_expected_actual() -> None:
    body = {"ids": "{{ tasks.search.output.results }}", "n": 1}
    errors, _ = run(body, [ref(("results",), ("ids",))])
    [error] = errors
    assert error.code == "incompatible_types"
    assert (error.task, error.location, error.edge) == (
        "enrich",
        "/tasks/1/body/ids",
        "search -> enrich",
    )
    assert (error.expected, error.actual) == ("integer", "string")
    assert "tasks.search.output.results is array of string" in error.message
    assert "requires array of integer" in error.message
    assert "/properties/ids/items/type" in error.message


def test_bounds_violation_is_an_incompatibility() -> None:
    schema = {**SEARCH_OUT, "properties": {**SEARCH_OUT["properties"], "count": INT}}
    errors, _ = run(
        {"ids": [], "n": "{{ tasks.search.output.count }}"},
        [ref(("count",), ("n",))],
        upstream={"search": schema},
    )
    [error] = errors
    assert error.code == "incompatible_types" and error.location == "/tasks/1/body/n"
    assert error.expected == ">= 0" and "minimum" in error.message


def test_unknown_output_path() -> None:
    r = ref(("hits", 0, "nope"), ("n",), pointer="/tasks/1/body/n")
    errors, _ = run({"ids": [], "n": "{{ tasks.search.output.hits[0].nope }}"}, [r])
    [error] = errors
    assert error.code == "unknown_output_path"
    assert (error.location, error.edge) == ("/tasks/1/body/n", "search -> enrich")
    assert error.expected == ["id", "title"]
    assert error.actual == "output.hits[0].nope"
    assert "tasks.search.output.hits[0].nope" in error.message


def test_unknown_output_path_outside_the_body() -> None:
    r = ref(("cnt",), None, pointer="/tasks/1/url", whole=False)
    errors, _ = run({"ids": [], "n": 1}, [r])
    assert [(e.code, e.location) for e in errors] == [("unknown_output_path", "/tasks/1/url")]
    assert errors[0].expected == sorted(SEARCH_OUT["properties"])


def test_reference_to_an_upstream_without_output_schema_is_a_warning() -> None:
    errors, warnings = run(
        {"ids": "{{ tasks.search.output.x }}", "n": 1},
        [ref(("x",), ("ids",))],
        upstream={"search": None},
    )
    assert errors == []
    [warning] = warnings
    assert warning.code == "unchecked_reference" and warning.edge == "search -> enrich"
    assert "declares no output schema" in warning.message


def test_silent_output_path_is_a_warning() -> None:
    errors, warnings = run(
        {"ids": [], "n": 1, "label": "{{ tasks.search.output.meta.x }}"},
        [ref(("meta", "x"), ("label",))],
    )
    assert errors == []
    assert [(w.code, w.location) for w in warnings] == [
        ("undecidable_output_path", "/tasks/1/body/label")
    ]


def test_dynamic_reference_is_a_warning_after_checking_its_prefix() -> None:
    errors, warnings = run(
        {"ids": "{{ tasks.search.output.hits[i] }}", "n": 1},
        [ref(("hits",), ("ids",), dynamic=True)],
    )
    assert errors == []
    assert [w.code for w in warnings] == ["dynamic_reference"]
    errors, _ = run({"ids": [], "n": 1}, [ref(("hitz",), ("ids",), dynamic=True)])
    assert [e.code for e in errors] == ["unknown_output_path"]


def test_undecidable_compatibility_is_a_warning() -> None:
    schema = {
        **ENRICH_IN,
        "properties": {**ENRICH_IN["properties"], "label": {**STR, "pattern": "^a"}},
    }
    errors, warnings = run(
        {"ids": [], "n": 1, "label": "{{ tasks.search.output.name }}"},
        [ref(("name",), ("label",))],
        input_schema=schema,
    )
    assert errors == []
    [warning] = warnings
    assert warning.code == "undecidable_compatibility" and warning.edge == "search -> enrich"
    assert "pattern" in warning.message and warning.location == "/tasks/1/body/label"


def test_interpolated_reference_renders_a_string() -> None:
    body = {
        "ids": [],
        "n": 1,
        "code": "id-{{ tasks.search.output.count }}",
        "label": "n={{ tasks.search.output.count }}",
    }
    refs = [ref(("count",), ("code",), whole=False), ref(("count",), ("label",), whole=False)]
    errors, _ = run(body, refs)
    [error] = errors
    assert error.code == "incompatible_types" and error.location == "/tasks/1/body/code"
    assert (error.expected, error.actual) == (["integer"], "string")
    assert "renders a string" in error.message


def test_status_code_and_headers_references() -> None:
    body = {
        "ids": [],
        "n": "{{ tasks.search.status_code }}",
        "label": "{{ tasks.search.status_code }}",
        "opts": {"depth": 1, "lang": "{{ tasks.search.headers.content_language }}"},
    }
    refs = [
        ref((), ("n",), attr="status_code"),
        ref((), ("label",), attr="status_code"),
        ref(("content_language",), ("opts", "lang"), attr="headers"),
    ]
    errors, _ = run(body, refs)
    [error] = errors
    assert error.code == "incompatible_types" and error.location == "/tasks/1/body/label"
    assert error.expected == "string" and error.actual == "integer"


def test_missing_input_property_at_every_level() -> None:
    body = {
        "ids": "{{ tasks.search.output.top3 }}",
        "opts": {"lang": "{{ tasks.search.output.name }}"},
    }
    refs = [ref(("top3",), ("ids",)), ref(("name",), ("opts", "lang"))]
    errors, _ = run(body, refs)
    found = sorted((e.code, e.location, e.expected) for e in errors)
    assert found == [
        ("missing_input_property", "/tasks/1/body", "n"),
        ("missing_input_property", "/tasks/1/body/opts", "depth"),
    ]
    top = next(e for e in errors if e.location == "/tasks/1/body")
    assert top.actual == ["ids", "opts"] and top.edge is None and "'n'" in top.message


def test_missing_input_property_in_a_literal_nested_object() -> None:
    errors, _ = run({"ids": [], "n": 1, "opts": {"lang": "en"}}, [])
    assert [(e.code, e.location, e.expected) for e in errors] == [
        ("missing_input_property", "/tasks/1/body/opts", "depth")
    ]


def test_no_body_but_required_properties() -> None:
    errors, _ = run(None, [])
    assert [(e.code, e.location, e.expected) for e in errors] == [
        ("missing_input_property", "/tasks/1/body", "ids"),
        ("missing_input_property", "/tasks/1/body", "n"),
    ]


def test_unexpected_input_property() -> None:
    body = {
        "ids": [],
        "n": 1,
        "extra": "{{ tasks.search.output.name }}",
        "opts": {"depth": 1, "x": 2},
    }
    errors, _ = run(body, [ref(("name",), ("extra",))])
    assert sorted((e.code, e.location, e.actual) for e in errors) == [
        ("unexpected_input_property", "/tasks/1/body/extra", "extra"),
        ("unexpected_input_property", "/tasks/1/body/opts/x", "x"),
    ]
    assert "additionalProperties" in errors[0].message


def test_invalid_input_literals() -> None:
    body = {"ids": [1, "two", "{{ tasks.search.output.count }}"], "n": -1, "mode": "turbo"}
    errors, _ = run(body, [ref(("count",), ("ids", 2))])
    found = sorted((e.code, e.location, e.expected, e.actual) for e in errors)
    assert found == [
        ("invalid_input_literal", "/tasks/1/body/ids/1", "integer", "two"),
        ("invalid_input_literal", "/tasks/1/body/mode", ["fast", "slow"], "turbo"),
        ("invalid_input_literal", "/tasks/1/body/n", 0, -1),
    ]
    mode = next(e for e in errors if e.location.endswith("mode"))
    assert "'turbo' is not one of" in mode.message and "/properties/mode" in mode.message


def test_templated_container_of_the_wrong_type() -> None:
    errors, _ = run(
        {"ids": {"a": "{{ tasks.search.output.count }}"}, "n": 1}, [ref(("count",), ("ids", "a"))]
    )
    assert [(e.code, e.location, e.actual) for e in errors] == [
        ("invalid_input_literal", "/tasks/1/body/ids", "object")
    ]


def test_whole_body_reference_is_compared_with_the_input_schema() -> None:
    out = {
        "type": "object",
        "properties": {"hits": arr(INT), "total": INT},
        "required": ["hits", "total"],
    }
    in_schema = obj({"ids": arr(INT), "n": INT}, ["ids", "n"])
    errors, _ = run(
        "{{ tasks.search.output }}", [ref((), ())], input_schema=in_schema, upstream={"search": out}
    )
    assert sorted((e.code, e.expected) for e in errors) == [
        ("incompatible_types", "ids"),
        ("incompatible_types", "n"),
    ]
    assert all(e.location == "/tasks/1/body" for e in errors)


def test_without_input_schema_only_paths_are_checked() -> None:
    errors, warnings = run(
        {"x": "{{ tasks.search.output.count }}", "y": "{{ tasks.search.output.nope }}"},
        [ref(("count",), ("x",)), ref(("nope",), ("y",))],
        input_schema=None,
    )
    assert [e.code for e in errors] == ["unknown_output_path"]
    assert warnings == []


def test_references_to_non_upstream_tasks_are_left_to_the_graph() -> None:
    errors, warnings = run(
        {"ids": [], "n": 1, "label": "{{ tasks.other.output.x }}"},
        [ref(("x",), ("label",), task="other")],
    )
    assert (errors, warnings) == ([], [])


def test_problem_dicts_have_the_report_shape() -> None:
    errors, _ = run(
        {"ids": "{{ tasks.search.output.results }}", "n": 1}, [ref(("results",), ("ids",))]
    )
    assert set(errors[0].to_dict()) == {
        "code",
        "task",
        "location",
        "edge",
        "message",
        "expected",
        "actual",
    }


def test_same_problem_is_reported_once() -> None:
    r = ref(("count",), ("code",), whole=False)
    errors, _ = run(
        {
            "ids": [],
            "n": 1,
            "code": "{{ tasks.search.output.count }}-{{ tasks.search.output.count }}",
        },
        [r, r],
    )
    assert len(errors) == 1


# --------------------------------------------------------------------------- validate_instance


def test_validate_instance_valid() -> None:
    assert validate_instance(SEARCH_OUT, {"results": ["a"], "count": 1}) == []


def test_validate_instance_reports_every_violation_sorted_by_pointer() -> None:
    instance = {"results": ["a", 2, None], "count": "x", "hits": [{"title": 1}]}
    found = validate_instance(SEARCH_OUT, instance)
    assert [(e["pointer"], e["keyword"]) for e in found] == [
        ("/count", "type"),
        ("/hits/0", "required"),
        ("/hits/0/title", "type"),
        ("/results/1", "type"),
        ("/results/2", "type"),
    ]
    assert all(isinstance(e["message"], str) and e["message"] for e in found)


def test_validate_instance_sorts_indices_numerically() -> None:
    found = validate_instance(arr(INT), ["x"] * 11)
    assert [e["pointer"] for e in found][:3] == ["/0", "/1", "/2"]
    assert found[-1]["pointer"] == "/10"


def test_validate_instance_root_error_and_formats() -> None:
    assert validate_instance(INT, "x") == [
        {"pointer": "", "message": "'x' is not of type 'integer'", "keyword": "type"}
    ]
    assert validate_instance({"format": "ipv4"}, "999.1.1.1")[0]["keyword"] == "format"


def test_validate_instance_never_raises_on_a_broken_schema() -> None:
    [error] = validate_instance({"$ref": "#/definitions/none"}, 1)
    assert error["keyword"] == "schema" and "could not be applied" in error["message"]
    assert validate_instance({"pattern": "("}, "x")[0]["keyword"] == "schema"


def test_validators_are_cached_by_schema_json() -> None:
    schema = {"type": "object", "properties": {"a": INT}}
    assert validator(schema) is validator(copy.deepcopy(schema))
    assert isinstance(validator(schema), Draft7Validator)


def test_long_messages_are_clipped() -> None:
    [error] = validate_instance({"type": "object"}, list(range(1000)))
    assert len(error["message"]) <= 400


def test_single_expression_with_a_filter_is_undecidable_not_a_string() -> None:
    body = {"ids": "{{ tasks.search.output.hits | map(attribute='id') | list }}", "n": 1}
    errors, warnings = run(body, [ref(("hits",), ("ids",), whole=False)])
    assert errors == []
    [warning] = warnings
    assert (warning.code, warning.location) == ("undecidable_compatibility", "/tasks/1/body/ids")
    assert "run time" in warning.message


def test_no_body_when_the_input_schema_rejects_null() -> None:
    errors, _ = run(None, [], input_schema={"type": "object"})
    [error] = errors
    assert (error.code, error.location, error.expected) == (
        "invalid_input_literal",
        "/tasks/1/body",
        "object",
    )
    assert run(None, [], input_schema={"type": ["object", "null"]}) == ([], [])


def test_required_names_through_allof_and_anyof() -> None:
    schema = {
        "allOf": [{"required": ["a"]}],
        "anyOf": [{"required": ["b", "c"]}, {"required": ["b"]}],
        "definitions": {"x": {"required": ["d"]}},
        "oneOf": [{"$ref": "#/definitions/x"}],
    }
    errors, _ = run({"z": "{{ tasks.search.output.name }}"}, [], input_schema=schema)
    assert sorted(e.expected for e in errors if e.code == "missing_input_property") == [
        "a",
        "b",
        "d",
    ]
