"""Is every value valid under a producer schema also valid under a consumer schema? (draft-07)

:func:`compare` answers ``compatible``, ``incompatible`` or ``undecidable`` and lists every
reason, each a :class:`Mismatch` that points at the consumer keyword concerned.

Soundness rule: ``compatible`` is answered only when it is proved for every value the producer's
schema admits. The checker decides ``type`` (``integer`` is a subset of ``number``), ``enum``,
``const``, the numeric bounds, ``multipleOf`` in its trivial cases, ``minLength``/``maxLength``,
``properties``, ``required``, ``additionalProperties``, ``patternProperties``, ``items`` (single
and tuple form), ``additionalItems``, ``minItems``/``maxItems``, local ``$ref``, ``allOf``,
``anyOf``/``oneOf`` where it can, ``not`` and ``if``/``then``/``else`` when the producer is
provably inside or outside the condition, and boolean schemas. Any other asserting keyword of the
consumer (``pattern``, ``format``, ``contains``, ``dependencies``, ...) that may reject a
producer value gives ``undecidable`` naming the keyword, unless the producer carries the very
same keyword. A producer that is an ``enum``/``const`` (or only ``null``/``boolean``) is decided
exactly, by validating each of its values against the consumer.

``incompatible`` means the producer's schema *declares* values that the consumer rejects (a type,
an unbounded range, an optional property the consumer requires). Where the producer's schema is
silent (``{}`` or ``true``, a property it does not declare, extra keys of an object it leaves
open) the answer is ``undecidable``, and an incompatibility that a producer keyword the checker
does not analyse (``not``, ``if``, ``dependencies``, ...) might rule out is reported as
``undecidable`` too. Keywords that only the producer has merely narrow it and are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from engine.contracts import memo as schema_memo
from engine.contracts.keywords import check_arrays, check_numbers, check_objects, check_strings
from engine.contracts.shapes import (
    Alt,
    Ctx,
    Mismatch,
    ObjectFacts,
    TooComplex,
    alternatives,
)
from engine.contracts.tools import (
    ALL_KINDS,
    MAX_COMPARE_DEPTH,
    NUMBER_KINDS,
    SCHEMA_FAILURES,
    Node,
    UnresolvedRef,
    as_dict,
    as_list,
    deref,
    is_trivial,
    node_validator,
    own_kinds,
    short,
    type_kinds,
    type_names,
)
from engine.jsonpointer import join_pointer

__all__ = ["Mismatch", "Verdict", "compare", "consumer_kinds"]

Status = Literal["compatible", "incompatible", "undecidable"]


#: producer keywords that may exclude values the checker would otherwise call incompatible
PRODUCER_OPAQUE = ("not", "if", "dependencies", "propertyNames", "minProperties", "maxProperties")


@dataclass(frozen=True)
class Verdict:
    status: Status
    reasons: list[Mismatch] = field(default_factory=list)

    @classmethod
    def of(cls, reasons: list[Mismatch]) -> Verdict:
        if any(m.kind == "incompatible" for m in reasons):
            return cls("incompatible", reasons)
        return cls("undecidable" if reasons else "compatible", reasons)


def compare(
    producer: Any, consumer: Any, *, producer_root: Any = None, consumer_root: Any = None
) -> Verdict:
    """Decide whether every instance valid under ``producer`` is valid under ``consumer``.

    ``*_root`` is the document a sub-schema's ``$ref`` values resolve against (default: itself).
    Never raises for a malformed schema: what cannot be analysed is ``undecidable``.
    """
    p_root = producer if producer_root is None else producer_root
    c_root = consumer if consumer_root is None else consumer_root

    def compute() -> Verdict:
        ctx = Ctx(compare_nodes)
        return Verdict.of(compare_nodes(Node(producer, p_root), Node(consumer, c_root), ctx))

    return schema_memo.cached("compare", (producer, consumer, p_root, c_root), None, compute)


def compare_nodes(producer: Node, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    try:
        consumer = deref(consumer)
    except UnresolvedRef as exc:
        return [ctx.unsure("$ref", f"the consumer's {exc}")]
    if is_trivial(consumer.schema):
        return []
    try:
        alts = [a for a in alternatives(producer) if a.kinds]
    except (UnresolvedRef, TooComplex) as exc:
        return [ctx.unsure(None, f"the producer's schema cannot be analysed: {exc}")]
    found: list[Mismatch] = []
    for alt in alts:
        found += compare_alt(alt, consumer, ctx)
    return _dedupe(found)


def _dedupe(found: list[Mismatch]) -> list[Mismatch]:
    seen: dict[tuple[str, str, str], Mismatch] = {}
    for m in found:
        seen.setdefault((m.kind, m.pointer, m.message), m)
    return list(seen.values())


def compare_alt(alt: Alt, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    """Check one producer alternative against a ``$ref``-free consumer node."""
    key = (tuple(id(p.schema) for p in alt.parts), id(consumer.schema))
    if key in ctx.assumed:
        return []
    if key in ctx.pending or ctx.depth > MAX_COMPARE_DEPTH:
        return [ctx.unsure(None, "the schemas recurse in a way the checker cannot follow")]
    ctx = replace(ctx, pending=ctx.pending | {key})
    schema = consumer.schema
    if not isinstance(schema, dict | bool):
        return [ctx.unsure(None, "the consumer's schema here is not an object or a boolean")]
    if schema is False:
        return [
            ctx.bad(
                None, "the consumer's schema here is false: it accepts no value", False, _d(alt)
            )
        ]
    if is_trivial(schema):
        return []
    if alt.candidates() is not None:
        return _compare_finite(alt, consumer, ctx)
    if alt.silent:
        return [ctx.unsure(None, "the producer's schema declares nothing about this value")]
    found = _check_keywords(alt, consumer, ctx)
    opaque = [k for k in PRODUCER_OPAQUE if alt.values(k)]
    if opaque:
        note = f" (not proved: the producer also uses {', '.join(opaque)}, which may exclude it)"
        found = [replace(m, kind="undecidable", message=m.message + note) for m in found]
    return found


def _d(alt: Alt) -> str:
    return " or ".join(type_names(alt.kinds)) if alt.kinds != ALL_KINDS else "any value"


def _compare_finite(alt: Alt, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    candidates = alt.candidates() or []
    try:
        values = [v for v in candidates if all(node_validator(p).is_valid(v) for p in alt.parts)]
        rejected = [(v, e) for v in values if (e := _first_error(consumer, v)) is not None]
    except SCHEMA_FAILURES as exc:
        return [
            ctx.unsure(None, f"the schemas could not be applied to the producer's values: {exc}")
        ]
    if not rejected:
        return []
    error = rejected[0][1]
    bad = [v for v, _ in rejected]
    where = replace(ctx, pointer=ctx.pointer + join_pointer(list(error.relative_schema_path)[:-1]))
    message = f"the producer may send {short(bad)}, which the consumer rejects: {error.message}"
    return [where.bad(str(error.validator), message, error.validator_value, bad)]


def _first_error(consumer: Node, value: Any) -> Any:
    errors = sorted(node_validator(consumer).iter_errors(value), key=lambda e: e.path)
    return errors[0] if errors else None


def _check_keywords(alt: Alt, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    schema = consumer.schema
    found = _check_type(alt, schema, ctx)
    relevant = alt.kinds & own_kinds(schema)
    if "enum" in schema or "const" in schema:
        found += _check_enum(alt, schema, ctx)
    if relevant & NUMBER_KINDS:
        found += check_numbers(alt, schema, ctx, relevant)
    if "string" in relevant:
        found += check_strings(alt, schema, ctx)
    if "array" in relevant:
        found += check_arrays(alt, consumer, ctx)
    if "object" in relevant:
        found += check_objects(alt, consumer, ctx)
    return found + _check_applicators(alt, consumer, ctx)


def _check_type(alt: Alt, schema: dict[str, Any], ctx: Ctx) -> list[Mismatch]:
    if "type" not in schema:
        return []
    allowed = type_kinds(schema)
    extra = alt.kinds - allowed
    if not extra:
        return []
    want = " or ".join(type_names(allowed)) or "no type"
    if not alt.declares_type:
        return [ctx.unsure("type", f"the producer declares no type; the consumer requires {want}")]
    message = f"the producer may send {' or '.join(type_names(extra))}, the consumer accepts {want}"
    if extra == {"fraction"}:
        message = (
            "the producer's number may have a fractional part, the consumer requires an integer"
        )
    names = type_names(alt.kinds)
    return [ctx.bad("type", message, schema["type"], names[0] if len(names) == 1 else names)]


def _check_enum(alt: Alt, schema: dict[str, Any], ctx: Ctx) -> list[Mismatch]:
    keyword = "const" if "const" in schema else "enum"
    message = (
        f"the producer may send any {_d(alt)}, the consumer accepts only {short(schema[keyword])}"
    )
    if not alt.declares_type:
        return [ctx.unsure(keyword, message)]
    return [ctx.bad(keyword, message, schema[keyword], _d(alt))]


def _check_applicators(alt: Alt, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    schema, root = consumer.schema, consumer.root
    found: list[Mismatch] = []
    for i, sub in enumerate(as_list(schema.get("allOf"))):
        found += compare_to(alt, Node(sub, root), ctx.via("allOf", i))
    if isinstance(schema.get("anyOf"), list):
        found += _check_union(alt, consumer, "anyOf", ctx)
    if isinstance(schema.get("oneOf"), list):
        found += _check_union(alt, consumer, "oneOf", ctx)
    if "not" in schema and not alt.same("not", schema["not"]):
        if not disjoint(alt, Node(schema["not"], root)):
            found.append(
                ctx.unsure(
                    "not",
                    "cannot prove the producer's values never match the consumer's 'not' schema",
                )
            )
    if "if" in schema and ("then" in schema or "else" in schema):
        found += _check_condition(alt, consumer, ctx)
    return found


def compare_to(alt: Alt, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    try:
        return compare_alt(alt, deref(consumer), ctx)
    except UnresolvedRef as exc:
        return [ctx.unsure("$ref", f"the consumer's {exc}")]


def _fits(alt: Alt, branch: Node, ctx: Ctx) -> bool:
    return not compare_to(alt, branch, ctx)


def _check_union(alt: Alt, consumer: Node, keyword: str, ctx: Ctx) -> list[Mismatch]:
    branches = [Node(b, consumer.root) for b in consumer.schema[keyword]]

    def covered(part: Alt) -> bool:
        for i, branch in enumerate(branches):
            if not _fits(part, branch, ctx.via(keyword, i)):
                continue
            others = branches[:i] + branches[i + 1 :]
            if keyword == "anyOf" or all(disjoint(part, o) for o in others):
                return True
        return False

    if covered(alt) or (alt.slices() and all(covered(s) for s in alt.slices())):
        return []
    kinds = frozenset().union(*(consumer_kinds(b) for b in branches))
    uncovered = alt.kinds - kinds
    expected = [short(b.schema, 60) for b in branches]
    if uncovered and alt.declares_type:
        sent = " or ".join(type_names(uncovered))
        message = f"the producer may send {sent}, which no alternative of the {keyword} accepts"
        return [ctx.bad(keyword, message, expected, type_names(alt.kinds))]
    rule = "exactly one" if keyword == "oneOf" else "one"
    message = (
        f"cannot prove that {rule} of the consumer's {keyword} alternatives accepts every value"
    )
    return [ctx.unsure(keyword, message, expected, _d(alt))]


def _check_condition(alt: Alt, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    schema, root = consumer.schema, consumer.root
    if alt.same_group({k: schema[k] for k in ("if", "then", "else") if k in schema}):
        return []
    condition = Node(schema["if"], root)
    if _fits(alt, condition, ctx.via("if")):
        return compare_to(alt, Node(schema.get("then", True), root), ctx.via("then"))
    if disjoint(alt, condition):
        return compare_to(alt, Node(schema.get("else", True), root), ctx.via("else"))
    return [
        ctx.unsure(
            "if", "cannot tell whether the producer's values meet the consumer's 'if' condition"
        )
    ]


def consumer_kinds(node: Node, depth: int = 0) -> frozenset[str]:
    """Kinds a consumer schema can accept, from ``type``/``enum``/``const`` and ``allOf``."""
    try:
        node = deref(node)
    except UnresolvedRef:
        return ALL_KINDS
    kinds = own_kinds(node.schema)
    if isinstance(node.schema, dict) and depth < MAX_COMPARE_DEPTH:
        for sub in as_list(node.schema.get("allOf")):
            kinds &= consumer_kinds(Node(sub, node.root), depth + 1)
    return kinds


def disjoint(alt: Alt, other: Node) -> bool:
    """True when no producer value of ``alt`` can be valid under ``other`` (sufficient test)."""
    common = alt.kinds & consumer_kinds(other)
    if not common:
        return True
    if common != {"object"}:
        return False
    try:
        other = deref(other)
    except UnresolvedRef:
        return False
    if not isinstance(other.schema, dict):
        return False
    props = as_dict(other.schema.get("properties"))
    facts = ObjectFacts(alt.parts, alt.root)
    return any(
        name in props and _never_matches(facts, name, Node(props[name], other.root))
        for name in as_list(other.schema.get("required"))
    )


def _never_matches(facts: ObjectFacts, name: str, sub: Node) -> bool:
    if facts.possible(name) is False:
        return True
    if not facts.value_nodes(name):
        return False
    try:
        values: list[Any] = []
        for alt in alternatives(facts.value(name)):
            candidates = alt.candidates()
            if candidates is None:
                return False
            values += [
                v for v in candidates if all(node_validator(p).is_valid(v) for p in alt.parts)
            ]
        return not any(node_validator(sub).is_valid(v) for v in values)
    except (*SCHEMA_FAILURES, UnresolvedRef, TooComplex):
        return False
