"""Property tests of the compatibility checker: what it calls compatible really is.

Schemas are drawn from the keyword subset the checker decides; consumers are either drawn
independently or derived from the producer by widening it, so that compatible pairs are common.
For every pair called compatible, candidate instances guided by the producer's shape that the
producer's schema accepts must validate against the consumer. (hypothesis-jsonschema would
generate them exactly, but 0.23 does not work with the Hypothesis we use; filtering guided
candidates with the real validator is as sound, if less thorough.)
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from engine.contracts.checks import compare, resolve_output_path, schema_problems, validate_instance

KEYS = ["a", "b", "c"]
SCALARS = st.one_of(
    st.integers(-3, 3), st.sampled_from(["a", "b", "xyz"]), st.booleans(), st.none()
)
SMALL_JSON = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=2),
)
REF = {"$ref": "#/definitions/d"}
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@st.composite
def numbers(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": draw(st.sampled_from(["integer", "number"]))}
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        if draw(st.integers(0, 4)) == 0:
            value = draw(st.sampled_from([-2, -1, 0, 1, 2, 3, 0.5, 1.5]))
            schema[key] = abs(value) or 1 if key == "multipleOf" else value
    return schema


@st.composite
def strings(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if draw(st.booleans()):
        schema["minLength"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        schema["maxLength"] = draw(st.integers(0, 5))
    return schema


LEAVES = st.one_of(
    numbers(),
    strings(),
    st.sampled_from(
        [{"type": "boolean"}, {"type": "null"}, {}, True, {"type": ["string", "null"]}]
    ),
    st.lists(SCALARS, min_size=1, max_size=3).map(lambda v: {"enum": v}),
    SCALARS.map(lambda v: {"const": v}),
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, Any]:
        props = draw(st.dictionaries(st.sampled_from(KEYS), inner, max_size=3))
        schema: dict[str, Any] = {"type": "object", "properties": props}
        schema["required"] = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=2))
        extra = draw(st.sampled_from(["absent", "false", "schema"]))
        if extra == "false":
            schema["additionalProperties"] = False
        elif extra == "schema":
            schema["additionalProperties"] = draw(inner)
        return schema

    @st.composite
    def arrays(draw: st.DrawFn) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array"}
        if draw(st.booleans()):
            schema["items"] = draw(inner)
        else:
            schema["items"] = draw(st.lists(inner, min_size=1, max_size=2))
            if draw(st.booleans()):
                schema["additionalItems"] = draw(st.one_of(st.just(False), inner))
        if draw(st.booleans()):
            schema["minItems"] = draw(st.integers(0, 2))
        if draw(st.booleans()):
            schema["maxItems"] = draw(st.integers(0, 3))
        return schema

    branches = st.lists(inner, min_size=1, max_size=3)
    return st.one_of(
        objects(),
        arrays(),
        branches.map(lambda b: {"anyOf": b}),
        branches.map(lambda b: {"oneOf": b}),
        st.lists(inner, min_size=1, max_size=2).map(lambda b: {"allOf": b}),
    )


INNER = st.recursive(LEAVES, _containers, max_leaves=6)
#: every root carries the definition that ``{"$ref": "#/definitions/d"}`` leaves point to
SCHEMAS = st.builds(lambda d, s: {"definitions": {"d": d}, "allOf": [s]}, INNER, INNER)


def widen(draw: st.DrawFn, schema: Any) -> Any:
    """A schema that (mostly) admits at least what ``schema`` admits, with random relaxations."""
    if not isinstance(schema, dict) or draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([schema, True, {}]))
    out = dict(schema)
    if out.get("type") == "integer" and draw(st.booleans()):
        out["type"] = "number"
    for key in (
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "multipleOf",
    ):
        if key in out and draw(st.booleans()):
            del out[key]
    if "required" in out:
        out["required"] = [r for r in out["required"] if draw(st.booleans())]
    if out.get("additionalProperties") is False and draw(st.booleans()):
        del out["additionalProperties"]
    if "enum" in out:
        out["enum"] = out["enum"] + draw(st.lists(SCALARS, max_size=2))
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: widen(draw, v) for k, v in out["properties"].items()}
    for key in ("items", "additionalItems", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = widen(draw, out[key])
    for key in ("anyOf", "oneOf"):
        if key in out:
            out[key] = [widen(draw, b) for b in out[key]]
    if draw(st.integers(0, 5)) == 0:
        out = {"anyOf": [out, draw(LEAVES)]}
    return out


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    producer = draw(SCHEMAS)
    consumer = widen(draw, producer) if draw(st.integers(0, 3)) else draw(SCHEMAS)
    return producer, consumer


def guided(schema: Any, root: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Candidate instances shaped like ``schema`` (not necessarily valid under it)."""
    if depth > 4 or not isinstance(schema, dict):
        return SMALL_JSON
    if "$ref" in schema:
        return guided(root["definitions"]["d"], root, depth + 1)
    options = [
        guided(s, root, depth + 1) for k in ("allOf", "anyOf", "oneOf") for s in schema.get(k, [])
    ]
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "const" in schema:
        options.append(st.just(schema["const"]))
    types = schema.get("type", ["object", "array", "null"] if not options else [])
    for name in types if isinstance(types, list) else [types]:
        options.append(_of_type(name, schema, root, depth))
    return st.one_of(options) if options else SMALL_JSON


def _of_type(name: str, schema: dict[str, Any], root: dict[str, Any], depth: int) -> Any:
    if name == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", {})
        fields = {k: guided(props.get(k, extra), root, depth + 1) for k in {*KEYS, *props}}
        return st.fixed_dictionaries({}, optional=fields)
    if name == "array":
        items = schema.get("items", {})
        first = items[0] if isinstance(items, list) else items
        return st.lists(guided(first, root, depth + 1), max_size=3)
    return {
        "integer": st.integers(-4, 4),
        "number": st.one_of(st.integers(-4, 4), st.sampled_from([-1.5, -0.5, 0.5, 1.5, 2.0])),
        "string": st.text(alphabet="abxyz", max_size=6),
        "boolean": st.booleans(),
        "null": st.none(),
    }[name]


@pytest.mark.slow
@SETTINGS
@given(pair=pairs(), data=st.data())
def test_compatible_means_every_producer_instance_fits(
    pair: tuple[Any, Any], data: st.DataObject
) -> None:
    producer, consumer = pair
    assume(compare(producer, consumer).status == "compatible")
    accepts, check = Draft7Validator(producer), Draft7Validator(consumer)
    candidates = guided(producer, producer)
    for _ in range(8):
        instance = data.draw(candidates)
        try:
            valid = accepts.is_valid(instance)
        except RecursionError:  # a definition that refers to itself without structure
            return
        if valid:
            assert check.is_valid(instance), (producer, consumer, instance)


@SETTINGS
@given(schema=SCHEMAS)
def test_a_schema_is_never_incompatible_with_itself(schema: Any) -> None:
    assert compare(schema, schema).status != "incompatible"


JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=3)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from([*sorted(Draft7Validator.VALIDATORS), "then", "else", "x"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=10,
)


@SETTINGS
@given(producer=JSON, consumer=JSON)
def test_compare_never_raises(producer: Any, consumer: Any) -> None:
    assert compare(producer, consumer).status in ("compatible", "incompatible", "undecidable")


@SETTINGS
@given(
    schema=JSON, instance=SMALL_JSON, path=st.lists(st.sampled_from(["a", "b", 0, 1]), max_size=3)
)
def test_the_other_entry_points_never_raise(schema: Any, instance: Any, path: list[Any]) -> None:
    assert resolve_output_path(schema, tuple(path)).status in ("found", "missing", "undecidable")
    assert all(p.code == "invalid_schema" for p in schema_problems(schema, location="", task=None))
    assert isinstance(validate_instance(schema, instance), list)
