"""Small shared pieces of the interface checker: schema nodes, local ``$ref``, JSON kinds.

A :class:`Node` is a sub-schema together with the document it lives in (its *root*), so that a
``$ref`` met deep inside can be resolved. Resolution goes through the ``referencing`` library
with an empty registry: only references inside the same document resolve (``#/definitions/x``,
``#/$defs/x``); nothing is ever fetched.

Values are classified by *kind* rather than by JSON Schema type so that ``integer`` is a proper
subset of ``number``: the kinds are ``null boolean object array string integer fraction``, where
``fraction`` is a number with a fractional part and ``number`` means ``{integer, fraction}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any

import jsonschema.exceptions
import referencing.exceptions
from jsonschema import Draft7Validator
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

Schema = dict[str, Any] | bool

ALL_KINDS = frozenset({"null", "boolean", "object", "array", "string", "integer", "fraction"})
NUMBER_KINDS = frozenset({"integer", "fraction"})
TYPE_KINDS: dict[str, frozenset[str]] = {
    "null": frozenset({"null"}),
    "boolean": frozenset({"boolean"}),
    "object": frozenset({"object"}),
    "array": frozenset({"array"}),
    "string": frozenset({"string"}),
    "integer": frozenset({"integer"}),
    "number": NUMBER_KINDS,
}
#: the keywords a draft-07 validator acts on; everything else is an annotation or ignored
ASSERTING = frozenset(Draft7Validator.VALIDATORS) | {"then", "else"}
#: what applying a malformed schema can raise besides ValidationError (never let it escape)
SCHEMA_FAILURES = (
    referencing.exceptions.Unresolvable,
    jsonschema.exceptions.UnknownType,
    re.error,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    ArithmeticError,
    RecursionError,
)
#: how many ``$ref`` may lead on from one another before :func:`deref` gives up (a loop)
MAX_REF_HOPS = 32
#: how deep one comparison of a producer schema with a consumer schema goes (every property,
#: item, applicator and ``$ref`` step counts) before it answers ``undecidable``; also how deeply a
#: producer may nest ``allOf``/``anyOf``/``oneOf``/``$ref`` before it is too complex to analyse
MAX_COMPARE_DEPTH = 48
#: how many levels of ``allOf``/``anyOf``/``oneOf``/``$ref`` a lookup at one position of a schema
#: (an output path step, an input position, the names an object requires) follows
MAX_LOOKUP_DEPTH = 32


@dataclass(frozen=True)
class Node:
    """A sub-schema and the document its ``$ref`` values are resolved against."""

    schema: Any
    root: Any


class UnresolvedRef(Exception):
    """A ``$ref`` that does not resolve inside its own document (or loops on itself)."""

    def __init__(self, ref: object, why: str) -> None:
        super().__init__(f"$ref {ref!r} {why}")
        self.ref = ref


def resolver_for(root: Any) -> Any:
    """A ``referencing`` resolver for local references inside ``root``."""
    return Registry().resolver_with_root(DRAFT7.create_resource(root))


def deref(node: Node) -> Node:
    """Follow ``$ref`` until a schema without one (draft-07 ignores a ``$ref``'s siblings)."""
    schema = node.schema
    resolver: Any = None
    for _ in range(MAX_REF_HOPS):
        if not isinstance(schema, dict) or "$ref" not in schema:
            return Node(schema, node.root)
        ref = schema["$ref"]
        if not isinstance(ref, str):
            raise UnresolvedRef(ref, "is not a string")
        resolver = resolver or resolver_for(node.root)
        try:
            resolved = resolver.lookup(ref)
        except SCHEMA_FAILURES:  # referencing also trips over malformed sibling keywords
            raise UnresolvedRef(ref, "does not point into this schema") from None
        schema, resolver = resolved.contents, resolved.resolver
    raise UnresolvedRef(node.schema.get("$ref"), "loops through other $refs only")


def kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "fraction"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_kinds(schema: Any) -> frozenset[str]:
    """The kinds a schema's own ``type`` keyword admits (all of them when it has none)."""
    if not isinstance(schema, dict) or "type" not in schema:
        return ALL_KINDS
    names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    kinds: set[str] = set()
    for name in names:
        kinds |= TYPE_KINDS.get(name, frozenset()) if isinstance(name, str) else set()
    return frozenset(kinds)


def own_kinds(schema: Any) -> frozenset[str]:
    """Kinds admitted by a schema's own ``type``, ``enum`` and ``const`` (applicators aside)."""
    if schema is False:
        return frozenset()
    kinds = type_kinds(schema)
    if isinstance(schema, dict) and "const" in schema:
        kinds &= {kind_of(schema["const"])}
    if isinstance(schema, dict) and isinstance(schema.get("enum"), list):
        kinds &= {kind_of(v) for v in schema["enum"]}
    return kinds


def type_names(kinds: frozenset[str] | set[str]) -> list[str]:
    """JSON Schema type names for a set of kinds (``{integer, fraction}`` -> ``number``)."""
    names = sorted(k for k in kinds if k not in NUMBER_KINDS)
    if NUMBER_KINDS <= kinds:
        names.append("number")
    elif "integer" in kinds:
        names.append("integer")
    elif "fraction" in kinds:
        names.append("number with a fractional part")
    return sorted(names)


def as_fraction(value: object) -> Fraction | None:
    """The exact value of a JSON number (a float's binary value, as Python compares it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return Fraction(value)
    except (ValueError, OverflowError):
        return None


def is_trivial(schema: Any) -> bool:
    """True when a schema accepts every value: ``true`` or no asserting keyword at all."""
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    return not any(key in ASSERTING for key in schema)


def as_list(value: Any) -> list[Any]:
    """A keyword's value when it is a list, else ``[]`` (a malformed schema reads as silent)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """A keyword's value when it is an object, else ``{}`` (a malformed schema reads as silent)."""
    return value if isinstance(value, dict) else {}


def canonical(value: Any) -> str | None:
    """A stable JSON text of a schema fragment, or None when it cannot be serialised."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return None


@lru_cache(maxsize=512)
def _cached_validator(text: str) -> Validator:
    schema = json.loads(text)
    return Draft7Validator(
        schema, registry=Registry(), format_checker=Draft7Validator.FORMAT_CHECKER
    )


def validator(schema: Any) -> Validator:
    """A draft-07 validator (formats asserted, no remote ``$ref``), cached by the schema's JSON."""
    text = canonical(schema)
    if text is not None:
        return _cached_validator(text)
    return Draft7Validator(
        schema, registry=Registry(), format_checker=Draft7Validator.FORMAT_CHECKER
    )


def node_validator(node: Node) -> Validator:
    """A validator for a sub-schema whose ``$ref`` values resolve against its root document."""
    return validator(node.root).evolve(schema=node.schema)


def conjunction(nodes: list[Node], root: Any) -> Node:
    """One node that holds when every node holds (``true`` for none, the node itself for one)."""
    kept = [n for n in nodes if not is_trivial(n.schema)]
    if not kept:
        return Node(True, root)
    if len(kept) == 1:
        return kept[0]
    return Node({"allOf": [n.schema for n in kept]}, root)


def matches(pattern: object, key: str) -> bool | None:
    """Whether a ``patternProperties`` regex matches a key; None when Python cannot compile it."""
    if not isinstance(pattern, str):
        return None
    try:
        return re.search(pattern, key) is not None
    except re.error:
        return None


def clip(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(value: Any, limit: int = 80) -> str:
    text = canonical(value) or repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(node: Node, depth: int = 2) -> str:
    """A few words for a schema in messages: ``array of integer``, ``integer >= 0``, ``object``."""
    try:
        node = deref(node)
    except UnresolvedRef as exc:
        return f"unresolvable ({exc})"
    schema = node.schema
    if schema is False:
        return "nothing (false)"
    if is_trivial(schema) or not isinstance(schema, dict):
        return "any value"
    if "const" in schema:
        return f"the constant {short(schema['const'])}"
    if isinstance(schema.get("enum"), list):
        return f"one of {short(schema['enum'])}"
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list) and "type" not in schema and depth > 0:
            return " or ".join(describe(Node(b, node.root), depth - 1) for b in schema[key][:4])
    kinds = own_kinds(schema)
    text = " or ".join(type_names(kinds)) if kinds != ALL_KINDS else "value"
    items = schema.get("items")
    if kinds == {"array"} and isinstance(items, dict | bool) and depth > 0:
        text = f"array of {describe(Node(items, node.root), depth - 1)}"
    return text + _bounds_text(schema)


def _bounds_text(schema: dict[str, Any]) -> str:
    ops = {
        "minimum": ">=",
        "exclusiveMinimum": ">",
        "maximum": "<=",
        "exclusiveMaximum": "<",
        "minLength": "length >=",
        "maxLength": "length <=",
        "minItems": "items >=",
        "maxItems": "items <=",
    }
    bounds = [f"{op} {schema[key]}" for key, op in ops.items() if key in schema]
    return f" ({', '.join(bounds)})" if bounds else ""
