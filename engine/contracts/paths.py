"""Find the sub-schema at a path: in a producer's output schema, or in a consumer's input schema.

Output paths (``tasks.X.output.a[0].b``) follow *declared* semantics, because a reference to a
property the producer never declares is almost always a typo:

- a key listed in ``properties`` (or matched by ``patternProperties``, or covered by an
  ``additionalProperties`` *schema*) is ``found``;
- a key not declared by an object schema that declares other keys, or that sets
  ``additionalProperties: false``, is ``missing`` (an error), and so is any key of a schema whose
  ``type`` is not ``object``, or an index of a non-array or past ``maxItems``;
- a schema that says nothing about its keys (``{}``, ``true``, ``{"type": "object"}``,
  ``additionalProperties: true``) makes the path ``undecidable`` (a warning);
- ``allOf``: found when any branch declares the key; ``anyOf``/``oneOf``: found when every branch
  does, missing when none does, otherwise undecidable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from engine.contracts import memo as schema_memo
from engine.contracts.tools import (
    ALL_KINDS,
    MAX_LOOKUP_DEPTH,
    Node,
    UnresolvedRef,
    as_dict,
    as_list,
    conjunction,
    deref,
    is_trivial,
    matches,
    own_kinds,
    type_names,
)
from engine.jsonpointer import escape_token

PathPart = str | int
LookupStatus = Literal["found", "missing", "undecidable"]
_RANK = {"found": 3, "undecidable": 2, "missing": 1, "silent": 0}


@dataclass(frozen=True)
class PathLookup:
    status: LookupStatus
    #: the sub-schema at the path when found (its ``$ref`` values resolve against the root)
    schema: Any
    reason: str
    #: property names declared where the lookup stopped (for "did you mean")
    declared: tuple[str, ...] = ()
    #: how many parts of the path were resolved before it stopped
    depth: int = 0


@dataclass(frozen=True)
class _Step:
    status: Literal["found", "missing", "undecidable", "silent"]
    node: Node | None = None
    reason: str = ""
    declared: tuple[str, ...] = ()


def format_path(path: tuple[PathPart, ...], head: str = "output") -> str:
    text = head
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def resolve_output_path(schema: Any, path: tuple[PathPart, ...]) -> PathLookup:
    """Find the sub-schema of an output schema at a template path (``("results", 0, "id")``)."""
    found, lookup = lookup_output_path(Node(schema, schema), path)
    return replace(lookup, schema=found.schema if found else None)


def lookup_output_path(node: Node, path: tuple[PathPart, ...]) -> tuple[Node | None, PathLookup]:
    """Like :func:`resolve_output_path`, also returning the found node (schema and root)."""
    for depth, part in enumerate(path):
        step = _step(node, part, 0)
        if step.status != "found" or step.node is None:
            where = format_path(path[:depth])
            status: LookupStatus = "missing" if step.status == "missing" else "undecidable"
            return None, PathLookup(status, None, f"{where} {step.reason}", step.declared, depth)
        node = step.node
    return node, PathLookup("found", node.schema, "", (), len(path))


def _step(node: Node, part: PathPart, depth: int) -> _Step:
    return schema_memo.cached(
        "step", (node.schema, node.root), (part, depth), lambda: _step_uncached(node, part, depth)
    )


def _step_uncached(node: Node, part: PathPart, depth: int) -> _Step:
    if depth > MAX_LOOKUP_DEPTH:
        return _Step("undecidable", reason="nests allOf/anyOf/$ref too deeply to follow")
    try:
        node = deref(node)
    except UnresolvedRef as exc:
        return _Step("undecidable", reason=f"has a {exc}")
    schema = node.schema
    if schema is False:
        return _Step("missing", reason="is the false schema: it admits no value")
    if not isinstance(schema, dict) or is_trivial(schema):
        return _Step("silent", reason="declares nothing (its schema is {} or true)")
    own = _own_index(node, part) if isinstance(part, int) else _own_key(node, str(part))
    result = _all(
        [own, *(_step(Node(s, node.root), part, depth + 1) for s in as_list(schema.get("allOf")))]
    )
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            branches = [_step(Node(s, node.root), part, depth + 1) for s in schema[key]]
            result = _all([result, _any(branches, key, node.root)])
    return result


def _all(steps: list[_Step]) -> _Step:
    """All of these hold: found anywhere wins, then undecidable, then missing."""
    found = [s.node for s in steps if s.status == "found" and s.node is not None]
    if found:
        return _Step("found", conjunction(found, found[0].root))
    return max(steps, key=lambda s: _RANK[s.status])


def _any(steps: list[_Step], keyword: str, root: Any) -> _Step:
    if steps and all(s.status == "found" and s.node for s in steps):
        return _Step("found", Node({"anyOf": [s.node.schema for s in steps if s.node]}, root))
    if steps and all(s.status == "missing" for s in steps):
        declared = tuple(sorted({d for s in steps for d in s.declared}))
        return _Step(
            "missing",
            reason=f"declares it in none of its {keyword} alternatives",
            declared=declared,
        )
    if all(s.status == "silent" for s in steps):
        return _Step("silent", reason=f"declares nothing in its {keyword} alternatives")
    return _Step("undecidable", reason=f"declares it in only some of its {keyword} alternatives")


def _own_key(node: Node, key: str) -> _Step:
    schema = node.schema
    kinds = own_kinds(schema)
    if "object" not in kinds:
        return _Step("missing", reason=f"is {_names(kinds)}, it has no property {key!r}")
    props, patterns = as_dict(schema.get("properties")), as_dict(schema.get("patternProperties"))
    declared = tuple(sorted(props))
    if key in props:
        return _Step("found", Node(props[key], node.root))
    hits = [(matches(p, key), sub) for p, sub in patterns.items()]
    if any(hit is None for hit, _ in hits):
        return _Step(
            "undecidable", reason="has a patternProperties regex the checker cannot evaluate"
        )
    chosen = [Node(sub, node.root) for hit, sub in hits if hit]
    if chosen:
        return _Step("found", conjunction(chosen, node.root))
    extra = schema.get("additionalProperties")
    if extra is False:
        return _Step("missing", reason=_undeclared(key, declared, closed=True), declared=declared)
    if isinstance(extra, dict) and not is_trivial(extra):
        return _Step("found", Node(extra, node.root))
    if extra is not None:
        return _Step(
            "undecidable", reason=f"allows any property but declares no schema for {key!r}"
        )
    if key in as_list(schema.get("required")):
        return _Step("found", Node(True, node.root))
    if props or patterns:
        return _Step("missing", reason=_undeclared(key, declared, closed=False), declared=declared)
    return _Step("silent", reason=f"declares no properties, so {key!r} cannot be checked")


def _undeclared(key: str, declared: tuple[str, ...], *, closed: bool) -> str:
    known = ", ".join(repr(d) for d in declared) or "none"
    tail = " and forbids others (additionalProperties: false)" if closed else ""
    return f"does not declare property {key!r}; it declares {known}{tail}"


def _own_index(node: Node, index: int) -> _Step:
    schema = node.schema
    kinds = own_kinds(schema)
    if "array" not in kinds:
        return _Step("missing", reason=f"is {_names(kinds)}, it has no item [{index}]")
    limit = schema.get("maxItems")
    if isinstance(limit, int) and 0 <= limit <= index:
        return _Step("missing", reason=f"has at most {limit} items, so no item [{index}]")
    items = schema.get("items")
    if isinstance(items, list):
        if 0 <= index < len(items):
            return _Step("found", Node(items[index], node.root))
        extra = schema.get("additionalItems")
        if extra is False or extra is None:
            return _Step(
                "missing", reason=f"declares only {len(items)} item positions, not [{index}]"
            )
        if is_trivial(extra):
            return _Step("undecidable", reason=f"declares no schema for item [{index}]")
        return _Step("found", Node(extra, node.root))
    if items is False:
        return _Step("missing", reason="admits no items (items: false)")
    if items is None or is_trivial(items):
        return _Step("silent", reason="declares no schema for its items")
    return _Step("found", Node(items, node.root))


def _names(kinds: frozenset[str]) -> str:
    if kinds == ALL_KINDS:
        return "any value"
    return " or ".join(type_names(kinds)) or "nothing"


@dataclass(frozen=True)
class InputPosition:
    """The consumer's sub-schema at a position of the body."""

    status: Literal["found", "unexpected", "undecidable"]
    node: Node
    #: JSON pointer into the input schema of the sub-schema (its last declared step)
    pointer: str
    reason: str = ""

    def child(self, part: PathPart) -> InputPosition:
        """The position one step down (``part``: a property name or an item index)."""
        status, node, suffix, reason = _input_step(self.node, part, 0)
        return InputPosition(status, node, self.pointer + suffix, reason)


def input_position(root: Any, path: tuple[PathPart, ...]) -> InputPosition:
    """Walk ``properties``/``items`` of an input schema down to a position of the body."""
    position = InputPosition("found", Node(root, root), "")
    for part in path:
        position = position.child(part)
        if position.status != "found":
            return position
    return position


def _input_step(node: Node, part: PathPart, depth: int) -> tuple[Any, Node, str, str]:
    return schema_memo.cached(
        "input_step",
        (node.schema, node.root),
        (part, depth),
        lambda: _input_step_uncached(node, part, depth),
    )


def _input_step_uncached(node: Node, part: PathPart, depth: int) -> tuple[Any, Node, str, str]:
    try:
        node = deref(node)
    except UnresolvedRef as exc:
        return "undecidable", Node(True, node.root), "", f"the input schema has a {exc}"
    schema, root = node.schema, node.root
    if not isinstance(schema, dict) or depth > MAX_LOOKUP_DEPTH:
        return "found", Node(schema is not False, root), "", ""
    own = _input_own(node, part)
    steps = [own] + [
        _input_step(Node(s, root), part, depth + 1) for s in as_list(schema.get("allOf"))
    ]
    for key in ("anyOf", "oneOf"):
        branches = [_input_step(Node(s, root), part, depth + 1) for s in as_list(schema.get(key))]
        if branches and all(b[0] == "unexpected" for b in branches):
            steps.append(branches[0])
        elif branches:
            union = Node({"anyOf": [b[1].schema for b in branches if b[0] == "found"]}, root)
            steps.append(("found", union, "", ""))
    for step in steps:
        if step[0] != "found":
            return step
    suffix = next((s[2] for s in steps if s[2]), "")
    return "found", conjunction([s[1] for s in steps], root), suffix, ""


def _input_own(node: Node, part: PathPart) -> tuple[Any, Node, str, str]:
    schema, root = node.schema, node.root
    if isinstance(part, int):
        items = schema.get("items")
        if isinstance(items, list):
            if part < len(items):
                return "found", Node(items[part], root), f"/items/{part}", ""
            extra = schema.get("additionalItems", True)
            if extra is False:
                return (
                    "unexpected",
                    Node(False, root),
                    "/additionalItems",
                    f"the input schema accepts only {len(items)} items",
                )
            return "found", Node(extra, root), "/additionalItems", ""
        return "found", Node(True if items is None else items, root), "/items", ""
    props = as_dict(schema.get("properties"))
    if part in props:
        return "found", Node(props[part], root), f"/properties/{escape_token(part)}", ""
    hits = [
        Node(sub, root)
        for p, sub in as_dict(schema.get("patternProperties")).items()
        if matches(p, part)
    ]
    if hits:
        return "found", conjunction(hits, root), "/patternProperties", ""
    extra = schema.get("additionalProperties", True)
    if extra is False:
        known = ", ".join(repr(k) for k in sorted(props)) or "none"
        reason = (
            f"the input schema does not accept property {part!r} "
            f"(additionalProperties is false; it declares {known})"
        )
        return "unexpected", Node(False, root), "/additionalProperties", reason
    return "found", Node(extra, root), "/additionalProperties" if extra is not True else "", ""
