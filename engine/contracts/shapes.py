"""The producer side of a comparison, and what it says about the objects and arrays it admits.

A producer schema is multiplied out into alternatives (``anyOf``/``oneOf`` branches); each
alternative (:class:`Alt`) is a conjunction of ``$ref``-free schema dicts (``parts``) that a value
must all satisfy. So a property's schema is the conjunction of what each part says about it, the
required names are the union, and a part with ``additionalProperties: false`` closes the keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

from engine.contracts.tools import (
    ALL_KINDS,
    MAX_COMPARE_DEPTH,
    NUMBER_KINDS,
    Node,
    as_dict,
    as_fraction,
    as_list,
    canonical,
    conjunction,
    deref,
    is_trivial,
    matches,
    own_kinds,
)
from engine.jsonpointer import escape_token, join_pointer

MAX_ALTERNATIVES = 64


@dataclass(frozen=True, kw_only=True)
class Mismatch:
    """One reason why a producer value may not fit (or may not provably fit) the consumer."""

    #: JSON pointer, inside the consumer schema given to :func:`compare`, of the keyword concerned
    pointer: str
    message: str
    expected: Any = None
    actual: Any = None
    #: ``incompatible``: proved (as far as the producer declares); ``undecidable``: not proved
    kind: Literal["incompatible", "undecidable"] = "incompatible"
    #: position inside the value (``/ids/*`` = every item of ``ids``)
    instance: str = ""


@dataclass(frozen=True)
class Ctx:
    """Where the comparison stands, and how to compare a pair of sub-schemas from here."""

    compare: Callable[[Node, Node, Ctx], list[Mismatch]]
    pointer: str = ""
    instance: str = ""
    depth: int = 0
    #: (producer, consumer) pairs being proved below a structural step: assumed (coinduction)
    assumed: frozenset[tuple[Any, int]] = frozenset()
    #: pairs entered since the last structural step: meeting one again is a loop without progress
    pending: frozenset[tuple[Any, int]] = frozenset()

    def into(self, schema_parts: tuple[str | int, ...], instance_part: str | int) -> Ctx:
        """Step into a property or item: loops from here on are well-founded."""
        return replace(
            self,
            pointer=self.pointer + join_pointer(schema_parts),
            instance=f"{self.instance}/{escape_token(instance_part)}",
            depth=self.depth + 1,
            assumed=self.assumed | self.pending,
            pending=frozenset(),
        )

    def via(self, *schema_parts: str | int) -> Ctx:
        return replace(
            self, pointer=self.pointer + join_pointer(schema_parts), depth=self.depth + 1
        )

    def bad(self, keyword: str | None, message: str, expected: Any, actual: Any) -> Mismatch:
        where = f"{self.pointer}/{escape_token(keyword)}" if keyword else self.pointer
        return Mismatch(
            pointer=where, message=message, expected=expected, actual=actual, instance=self.instance
        )

    def unsure(
        self, keyword: str | None, message: str, expected: Any = None, actual: Any = None
    ) -> Mismatch:
        return replace(self.bad(keyword, message, expected, actual), kind="undecidable")


class TooComplex(Exception):
    """The producer has too many alternatives or nests too deeply to analyse."""


@dataclass(frozen=True)
class Alt:
    """One alternative of the producer: the conjunction of some ``$ref``-free schema dicts."""

    parts: tuple[Node, ...]
    root: Any

    def values(self, keyword: str) -> list[Any]:
        return [p.schema[keyword] for p in self.parts if keyword in p.schema]

    @cached_property
    def kinds(self) -> frozenset[str]:
        kinds = ALL_KINDS
        for part in self.parts:
            kinds &= own_kinds(part.schema)
        if any(_integral_step(v) for v in self.values("multipleOf")):
            kinds -= {"fraction"}
        return kinds

    @property
    def declares_type(self) -> bool:
        return any(k in p.schema for p in self.parts for k in ("type", "enum", "const"))

    @property
    def silent(self) -> bool:
        return all(is_trivial(_own(p.schema)) for p in self.parts)

    def candidates(self) -> list[Any] | None:
        """The producer's possible values when there are finitely many, before filtering."""
        pools = [v for v in self.values("enum") if isinstance(v, list)]
        pools += [[v] for v in self.values("const")]
        if pools:
            return list(pools[0])
        if self.kinds <= {"null", "boolean"}:
            return [None, True, False]
        return None

    def same(self, keyword: str, value: Any) -> bool:
        """True when a producer part carries exactly this consumer keyword and value."""
        text = canonical(value)
        if text is None or '"$ref"' in text:
            return False
        return any(canonical(v) == text for v in self.values(keyword))

    def same_group(self, keywords: dict[str, Any]) -> bool:
        """True when one producer part carries all these keywords with these very values."""
        text = canonical(keywords)
        if text is None or '"$ref"' in text:
            return False
        return any(canonical({k: p.schema.get(k) for k in keywords}) == text for p in self.parts)

    def narrowed(self, type_name: str) -> Alt:
        return Alt((*self.parts, Node({"type": type_name}, self.root)), self.root)

    def slices(self) -> list[Alt]:
        names = {"number" if k in NUMBER_KINDS else k for k in self.kinds}
        return [self.narrowed(n) for n in sorted(names)] if len(names) > 1 else []


def _own(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("allOf", "anyOf", "oneOf", "$ref")}


def alternatives(node: Node, depth: int = 0) -> list[Alt]:
    """The producer as a disjunction of conjunctions (``anyOf``/``oneOf`` multiplied out)."""
    return [Alt(parts, node.root) for parts in _flatten(node, depth)]


def _flatten(node: Node, depth: int) -> list[tuple[Node, ...]]:
    if depth > MAX_COMPARE_DEPTH:
        raise TooComplex("the producer schema nests allOf/anyOf/$ref too deeply")
    node = deref(node)
    schema = node.schema
    if schema is False:
        return []
    if not isinstance(schema, dict):
        return [()]
    alts: list[tuple[Node, ...]] = [(node,)]
    for sub in as_list(schema.get("allOf")):
        alts = _product(alts, _flatten(Node(sub, node.root), depth + 1))
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            union = [a for sub in schema[key] for a in _flatten(Node(sub, node.root), depth + 1)]
            alts = _product(alts, union)
    return alts


def _product(left: list[tuple[Node, ...]], right: list[tuple[Node, ...]]) -> list[tuple[Node, ...]]:
    if len(left) * len(right) > MAX_ALTERNATIVES:
        raise TooComplex(f"the producer schema has more than {MAX_ALTERNATIVES} alternatives")
    return [a + b for a in left for b in right]


def _integral_step(value: Any) -> bool:
    """A ``multipleOf`` whose multiples are integers even under jsonschema's float arithmetic."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value > 0
    step = as_fraction(value)  # a float: x / step is exact only for a power of two
    return (
        step is not None
        and step >= 1
        and step.denominator == 1
        and step.numerator & (step.numerator - 1) == 0
    )


@dataclass(frozen=True)
class ObjectFacts:
    parts: tuple[Node, ...]
    root: Any

    @cached_property
    def required(self) -> frozenset[str]:
        names: set[str] = set()
        for part in self.parts:
            names |= {n for n in as_list(part.schema.get("required")) if isinstance(n, str)}
        return frozenset(names)

    @cached_property
    def closed_keys(self) -> frozenset[str] | None:
        """The only keys the object can have, or None when the producer leaves it open."""
        keys: frozenset[str] | None = None
        for part in self.parts:
            schema = part.schema
            if schema.get("additionalProperties") is False and not as_dict(
                schema.get("patternProperties")
            ):
                own = frozenset(as_dict(schema.get("properties")))
                keys = own if keys is None else keys & own
        return keys

    @property
    def has_patterns(self) -> bool:
        return any(as_dict(p.schema.get("patternProperties")) for p in self.parts)

    def possible(self, name: str) -> bool:
        """False when some part forbids the key (``additionalProperties: false``)."""
        for part in self.parts:
            schema = part.schema
            if schema.get("additionalProperties") is not False or name in as_dict(
                schema.get("properties")
            ):
                continue
            hits = [matches(p, name) for p in as_dict(schema.get("patternProperties"))]
            if not any(h is not False for h in hits):
                return False
        return True

    def known_keys(self) -> frozenset[str]:
        """Keys the producer declares (all keys it can have when it is closed)."""
        if self.closed_keys is not None:
            keys = self.closed_keys
        else:
            keys = self.required.union(*(as_dict(p.schema.get("properties")) for p in self.parts))
        return frozenset(k for k in keys if self.possible(k))

    def value_nodes(self, name: str) -> list[Node]:
        """Every producer sub-schema that applies to the value of property ``name``."""
        nodes: list[Node] = []
        for part in self.parts:
            schema = part.schema
            props = as_dict(schema.get("properties"))
            hits = [
                Node(sub, part.root)
                for pattern, sub in as_dict(schema.get("patternProperties")).items()
                if matches(pattern, name)
            ]
            if name in props:
                nodes.append(Node(props[name], part.root))
            nodes += hits
            extra = schema.get("additionalProperties")
            if name not in props and not hits and isinstance(extra, dict) and not is_trivial(extra):
                nodes.append(Node(extra, part.root))
        return nodes

    def value(self, name: str) -> Node:
        return conjunction(self.value_nodes(name), self.root)

    def extra_nodes(self) -> list[Node]:
        """The ``additionalProperties`` schemas an undeclared key's value must satisfy."""
        return [
            Node(p.schema["additionalProperties"], p.root)
            for p in self.parts
            if isinstance(p.schema.get("additionalProperties"), dict)
            and not is_trivial(p.schema["additionalProperties"])
        ]


@dataclass(frozen=True)
class ArrayFacts:
    parts: tuple[Node, ...]
    root: Any

    @cached_property
    def min_items(self) -> int:
        return max((v for p in self.parts if _is_int(v := p.schema.get("minItems"))), default=0)

    @cached_property
    def max_items(self) -> int | None:
        limits: list[int] = []
        for part in self.parts:
            schema = part.schema
            if _is_int(schema.get("maxItems")):
                limits.append(schema["maxItems"])
            items = schema.get("items")
            if items is False:
                limits.append(0)
            if isinstance(items, list) and schema.get("additionalItems") is False:
                limits.append(len(items))
        return min(limits) if limits else None

    @cached_property
    def tuple_len(self) -> int:
        lengths = [
            len(p.schema["items"]) for p in self.parts if isinstance(p.schema.get("items"), list)
        ]
        return max(lengths, default=0)

    def may_have(self, index: int) -> bool:
        """Whether the producer's array can have an item at ``index``."""
        return self.max_items is None or self.max_items > index

    def at(self, index: int) -> Node:
        return conjunction([self._item(p, index) for p in self.parts], self.root)

    def tail(self) -> Node:
        """The schema of every item from :attr:`tuple_len` on."""
        return conjunction([self._item(p, self.tuple_len) for p in self.parts], self.root)

    @staticmethod
    def _item(part: Node, index: int) -> Node:
        items = part.schema.get("items")
        if items is None:
            return Node(True, part.root)
        if isinstance(items, list):
            if index < len(items):
                return Node(items[index], part.root)
            return Node(part.schema.get("additionalItems", True), part.root)
        return Node(items, part.root)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
