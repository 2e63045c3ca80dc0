"""The type-specific consumer keywords: numbers, strings, arrays and objects.

Each check gets one producer alternative and the consumer node, and returns every mismatch.
Sub-schemas (items, property values) are compared through ``ctx.compare``, so that recursion
and its loop detection stay in :mod:`engine.contracts.compat`.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from engine.contracts.shapes import Alt, ArrayFacts, Ctx, Mismatch, ObjectFacts
from engine.contracts.tools import (
    SCHEMA_FAILURES,
    Node,
    as_dict,
    as_fraction,
    as_list,
    conjunction,
    is_trivial,
    matches,
    node_validator,
    short,
)

Bound = tuple[Any, bool]  # (value as Fraction, exclusive)


def _bound(alt: Alt, keys: tuple[str, str], lower: bool, integral: bool) -> Bound | None:
    best: Bound | None = None
    for key, exclusive in ((keys[0], False), (keys[1], True)):
        for raw in alt.values(key):
            value = as_fraction(raw)
            if value is None:
                continue
            tighter = best is None or (value > best[0] if lower else value < best[0])
            if tighter or (best is not None and value == best[0] and exclusive):
                best = (value, exclusive)
    if best is None or not integral:
        return best
    value, exclusive = best
    if lower:
        whole = math.floor(value) + 1 if exclusive else math.ceil(value)
    else:
        whole = math.ceil(value) - 1 if exclusive else math.floor(value)
    return (Fraction(whole), False)


def check_numbers(
    alt: Alt, schema: dict[str, Any], ctx: Ctx, relevant: frozenset[str]
) -> list[Mismatch]:
    integral = not (relevant & {"fraction"})
    lo = _bound(alt, ("minimum", "exclusiveMinimum"), True, integral)
    hi = _bound(alt, ("maximum", "exclusiveMaximum"), False, integral)
    shown = _range_text(lo, hi)
    found: list[Mismatch] = []
    checks: tuple[tuple[str, str, tuple[Any, bool] | None, int], ...]
    checks = (("minimum", ">=", lo, 1), ("exclusiveMinimum", ">", lo, 1))
    checks += (("maximum", "<=", hi, -1), ("exclusiveMaximum", "<", hi, -1))
    for key, op, have, sign in checks:
        limit = as_fraction(schema.get(key))
        if limit is None:
            continue
        ok = have is not None and (
            sign * (have[0] - limit) > 0 or (have[0] == limit and (op in (">=", "<=") or have[1]))
        )
        if not ok:
            message = (
                f"the producer allows numbers {shown}, the consumer requires {op} {schema[key]}"
            )
            found.append(ctx.bad(key, message, f"{op} {schema[key]}", shown))
    if "multipleOf" in schema and not _multiple_ok(alt, schema["multipleOf"], integral):
        found.append(
            ctx.unsure(
                "multipleOf",
                f"cannot prove the producer's numbers are multiples of {schema['multipleOf']}",
            )
        )
    return found


def _range_text(lo: Bound | None, hi: Bound | None) -> str:
    left = "unbounded below" if lo is None else f"{'>' if lo[1] else '>='} {_num(lo[0])}"
    right = "unbounded above" if hi is None else f"{'<' if hi[1] else '<='} {_num(hi[0])}"
    return f"{left}, {right}"


def _num(value: Any) -> str:
    return str(value.numerator) if value.denominator == 1 else str(float(value))


def _multiple_ok(alt: Alt, raw: Any, integral: bool) -> bool:
    """Trivial cases only, chosen to hold under jsonschema's float arithmetic too.

    Integers are multiples of 1 and of 1/2**k (division by those is exact); a producer
    ``multipleOf`` that is an integer multiple of an integral consumer step implies it.
    """
    step = as_fraction(raw)
    if step is None or step <= 0:
        return True  # not a valid multipleOf: schema_problems reports it
    dyadic = step.numerator == 1 and step.denominator & (step.denominator - 1) == 0
    if integral and dyadic:
        return True
    if step.denominator != 1:
        return False
    return any(
        isinstance(m, int) and not isinstance(m, bool) and m > 0 and m % step == 0
        for m in alt.values("multipleOf")
    )


def check_strings(alt: Alt, schema: dict[str, Any], ctx: Ctx) -> list[Mismatch]:
    lengths = [v for v in alt.values("minLength") if isinstance(v, int)]
    lo = max(lengths, default=0)
    his = [v for v in alt.values("maxLength") if isinstance(v, int)]
    hi = min(his) if his else None
    shown = f"length {lo}..{'unbounded' if hi is None else hi}"
    found: list[Mismatch] = []
    want_lo, want_hi = schema.get("minLength"), schema.get("maxLength")
    if isinstance(want_lo, int) and lo < want_lo:
        message = (
            f"the producer allows strings of {shown}, the consumer requires minLength {want_lo}"
        )
        found.append(ctx.bad("minLength", message, want_lo, lo))
    if isinstance(want_hi, int) and (hi is None or hi > want_hi):
        message = (
            f"the producer allows strings of {shown}, the consumer requires maxLength {want_hi}"
        )
        found.append(ctx.bad("maxLength", message, want_hi, hi))
    for key in ("pattern", "format"):
        if key in schema and not alt.same(key, schema[key]):
            message = f"cannot prove the producer's strings satisfy {key} {short(schema[key])}"
            found.append(ctx.unsure(key, message, schema[key], alt.values(key) or None))
    return found


def check_arrays(alt: Alt, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    schema, facts = consumer.schema, ArrayFacts(alt.parts, alt.root)
    found: list[Mismatch] = []
    want_lo, want_hi = schema.get("minItems"), schema.get("maxItems")
    shown = f"{facts.min_items}..{'unbounded' if facts.max_items is None else facts.max_items}"
    if isinstance(want_lo, int) and facts.min_items < want_lo:
        message = (
            f"the producer's array may have {shown} items, the consumer requires {want_lo} or more"
        )
        found.append(ctx.bad("minItems", message, want_lo, shown))
    if isinstance(want_hi, int) and (facts.max_items is None or facts.max_items > want_hi):
        message = (
            f"the producer's array may have {shown} items, the consumer accepts at most {want_hi}"
        )
        found.append(ctx.bad("maxItems", message, want_hi, shown))
    found += _check_items(facts, consumer, ctx)
    if "contains" in schema and not _contains_ok(alt, facts, consumer, ctx):
        found.append(
            ctx.unsure("contains", "cannot prove the producer's array contains a matching item")
        )
    if schema.get("uniqueItems") is True and not (
        alt.same("uniqueItems", True) or (facts.max_items is not None and facts.max_items <= 1)
    ):
        found.append(
            ctx.unsure("uniqueItems", "cannot prove the producer's array items are unique")
        )
    return found


def _check_items(facts: ArrayFacts, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    items, root = consumer.schema.get("items"), consumer.root
    if items is None:
        return []
    found: list[Mismatch] = []
    if not isinstance(items, list):
        for i in range(facts.tuple_len):
            if facts.may_have(i):
                found += ctx.compare(facts.at(i), Node(items, root), ctx.into(("items",), i))
        if facts.may_have(facts.tuple_len):
            found += ctx.compare(facts.tail(), Node(items, root), ctx.into(("items",), "*"))
        return found
    for i, sub in enumerate(items):
        if facts.may_have(i):
            found += ctx.compare(facts.at(i), Node(sub, root), ctx.into(("items", i), i))
    size, extra = len(items), consumer.schema.get("additionalItems", True)
    if not facts.may_have(size) or is_trivial(extra):
        return found
    if extra is False:
        message = (
            f"the producer's array may have more than {size} items, the consumer accepts {size}"
        )
        return [*found, ctx.bad("additionalItems", message, size, facts.max_items)]
    for i in range(size, max(size, facts.tuple_len)):
        if facts.may_have(i):
            found += ctx.compare(facts.at(i), Node(extra, root), ctx.into(("additionalItems",), i))
    if facts.may_have(max(size, facts.tuple_len)):
        found += ctx.compare(facts.tail(), Node(extra, root), ctx.into(("additionalItems",), "*"))
    return found


def _contains_ok(alt: Alt, facts: ArrayFacts, consumer: Node, ctx: Ctx) -> bool:
    wanted = consumer.schema["contains"]
    if alt.same("contains", wanted):
        return True
    if facts.min_items < 1 or facts.tuple_len:
        return False
    return not ctx.compare(facts.tail(), Node(wanted, consumer.root), ctx.into(("contains",), "*"))


def check_objects(alt: Alt, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    facts = ObjectFacts(alt.parts, alt.root)
    found = _check_required(facts, consumer.schema, ctx)
    found += _check_properties(facts, consumer, ctx)
    found += _check_additional(facts, consumer, ctx)
    return found + _check_object_counts(alt, facts, consumer, ctx)


def _check_required(facts: ObjectFacts, schema: dict[str, Any], ctx: Ctx) -> list[Mismatch]:
    found: list[Mismatch] = []
    for name in as_list(schema.get("required")):
        if not isinstance(name, str) or name in facts.required:
            continue
        if facts.possible(name) is False:
            message = (
                f"the consumer requires property {name!r}, which the producer's object never has"
            )
        else:
            message = (
                f"the consumer requires property {name!r}, which the producer's object may lack "
                "(its schema does not list it in required)"
            )
        found.append(ctx.bad("required", message, name, sorted(facts.required)))
    return found


def _check_properties(facts: ObjectFacts, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    found: list[Mismatch] = []
    props = consumer.schema.get("properties")
    for name, sub in as_dict(props).items():
        if facts.possible(name) is False:
            continue
        step = ctx.into(("properties", name), name)
        if not facts.value_nodes(name):
            if ctx.compare(Node(True, facts.root), Node(sub, consumer.root), step):
                message = (
                    f"the producer does not declare property {name!r}; if sent, it may not fit"
                )
                found.append(step.unsure(None, message))
            continue
        found += ctx.compare(facts.value(name), Node(sub, consumer.root), step)
    patterns = consumer.schema.get("patternProperties")
    for pattern, sub in as_dict(patterns).items():
        found += _check_pattern(facts, pattern, Node(sub, consumer.root), ctx)
    return found


def _check_pattern(facts: ObjectFacts, pattern: str, sub: Node, ctx: Ctx) -> list[Mismatch]:
    if is_trivial(sub.schema):
        return []
    found: list[Mismatch] = []
    for name in sorted(facts.known_keys()):
        hit = matches(pattern, name)
        if hit is None:
            return [ctx.unsure("patternProperties", f"cannot evaluate the regex {pattern!r}")]
        if hit and facts.possible(name) is not False:
            found += ctx.compare(
                facts.value(name), sub, ctx.into(("patternProperties", pattern), name)
            )
    if facts.closed_keys is None:
        message = (
            f"the producer's object is open: properties it does not declare may match {pattern!r}"
        )
        found.append(ctx.unsure("patternProperties", message))
    return found


def _is_extra(name: str, schema: dict[str, Any]) -> bool | None:
    props = schema.get("properties")
    if isinstance(props, dict) and name in props:
        return False
    patterns = schema.get("patternProperties")
    hits = [matches(p, name) for p in as_dict(patterns)]
    if None in hits:
        return None
    return not any(hits)


def _check_additional(facts: ObjectFacts, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    schema, extra = consumer.schema, consumer.schema.get("additionalProperties")
    if extra is None or is_trivial(extra):
        return []
    declared = sorted(as_dict(schema.get("properties")))
    found: list[Mismatch] = []
    for name in sorted(facts.known_keys()):
        verdict = _is_extra(name, schema)
        if verdict is None:
            return [ctx.unsure("patternProperties", "cannot evaluate a patternProperties regex")]
        if not verdict or facts.possible(name) is False:
            continue
        if extra is False:
            message = f"the producer may send property {name!r}, which the consumer does not accept"
            found.append(ctx.bad("additionalProperties", message, declared, name))
        else:
            step = ctx.into(("additionalProperties",), name)
            found += ctx.compare(facts.value(name), Node(extra, consumer.root), step)
    if facts.closed_keys is None:
        found += _check_open_extras(facts, consumer, ctx, declared)
    return found


def _check_open_extras(
    facts: ObjectFacts, consumer: Node, ctx: Ctx, declared: list[str]
) -> list[Mismatch]:
    extra = consumer.schema["additionalProperties"]
    typed = facts.extra_nodes()
    if not typed or facts.has_patterns or consumer.schema.get("patternProperties"):
        wording = "does not accept" if extra is False else "constrains"
        message = (
            "the producer's object is open (its schema does not set additionalProperties: false), "
            f"so it may carry properties the consumer {wording}"
        )
        return [ctx.unsure("additionalProperties", message, declared, sorted(facts.known_keys()))]
    if extra is False:
        message = (
            "the producer allows properties beyond those it declares, the consumer accepts none"
        )
        return [ctx.bad("additionalProperties", message, declared, "additionalProperties")]
    node = conjunction(typed, facts.root)
    return ctx.compare(node, Node(extra, consumer.root), ctx.into(("additionalProperties",), "*"))


def _check_object_counts(alt: Alt, facts: ObjectFacts, consumer: Node, ctx: Ctx) -> list[Mismatch]:
    schema, found = consumer.schema, []
    low = schema.get("minProperties")
    if isinstance(low, int) and len(facts.required) < low:
        found.append(
            ctx.unsure("minProperties", f"cannot prove the producer's object has {low} properties")
        )
    high = schema.get("maxProperties")
    keys = facts.closed_keys
    if isinstance(high, int) and (keys is None or len(keys) > high):
        found.append(
            ctx.unsure(
                "maxProperties", f"cannot prove the producer's object has at most {high} properties"
            )
        )
    if "propertyNames" in schema and not alt.same("propertyNames", schema["propertyNames"]):
        found += _check_names(facts, Node(schema["propertyNames"], consumer.root), ctx)
    deps = schema.get("dependencies")
    for name, need in as_dict(deps).items():
        if facts.possible(name) is False or alt.same("dependencies", deps):
            continue
        if isinstance(need, list) and set(need) <= facts.required:
            continue
        found.append(
            ctx.unsure(
                "dependencies", f"cannot prove the producer satisfies the dependencies of {name!r}"
            )
        )
    return found


def _check_names(facts: ObjectFacts, names: Node, ctx: Ctx) -> list[Mismatch]:
    if facts.closed_keys is None:
        return [
            ctx.unsure(
                "propertyNames", "the producer's object is open: cannot check its property names"
            )
        ]
    try:
        bad = sorted(k for k in facts.closed_keys if not node_validator(names).is_valid(k))
    except SCHEMA_FAILURES as exc:
        return [ctx.unsure("propertyNames", f"cannot apply propertyNames: {exc}")]
    if not bad:
        return []
    return [
        ctx.bad(
            "propertyNames",
            f"the producer may send properties named {short(bad)}, which propertyNames rejects",
            names.schema,
            bad,
        )
    ]
