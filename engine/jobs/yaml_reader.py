"""Reading YAML workflow documents safely, keeping where every value sits.

Only plain data gets through: YAML's safe schema, no tags beyond the core ones (``!!python/...``
and custom tags are refused), string keys only, no duplicate keys, no ``!!binary`` and no
NaN/infinity. Timestamps become ISO 8601 strings. Anchors, aliases and merge keys (``<<``) work;
the document is built as a tree of fresh values (no shared objects), with a cap on how far aliases
may expand it. ``marks`` maps the JSON pointer of every value ("/tasks/1/body/ids", ``~0``/``~1``
escaped, "" for the root) to the 1-based (line, column) where its YAML node starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.errors import JobQueueError, Problem
from engine.jsonpointer import escape_token

#: (line, column), both 1-based
Mark = tuple[int, int]

#: values a document may expand to through aliases before it is refused ("billion laughs")
MAX_VALUES = 1_000_000
#: nesting depth of mappings and lists
MAX_DEPTH = 200

_CORE = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = (_CORE + t for t in ("str", "map", "seq", "merge"))
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
#: libyaml's parser when PyYAML was built with it (about ten times faster), same safe semantics
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_DATA = "workflow files hold plain data: strings, numbers, booleans, null, lists, mappings"


class WorkflowFileError(JobQueueError):
    """A workflow file (or YAML request body) that cannot be read as a plain-data document."""

    def __init__(
        self, reason: str, *, source: str, line: int | None = None, column: int | None = None
    ) -> None:
        self.reason = reason
        self.source = source
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.source}: {self.reason}"
        return f"{self.source}:{self.line}:{self.column}: {self.reason}"

    def to_problem(self) -> Problem:
        """The error as one entry of a validation report (``code="invalid_yaml"``)."""
        return Problem(code="invalid_yaml", message=self.reason, line=self.line, column=self.column)


@dataclass(frozen=True, kw_only=True)
class LoadedDocument:
    #: plain JSON-compatible data (dict / list / str / int / float / bool / None)
    document: Any
    #: JSON pointer -> (line, column) of the YAML node, 1-based; "" is the root
    marks: dict[str, Mark]
    #: file name (or ``<string>``, ``<request body>``) used in messages
    source: str = "<string>"

    @property
    def single_call(self) -> bool:
        """True for the single-call form (top-level ``method``/``url``, no ``tasks``)."""
        return isinstance(self.document, dict) and "tasks" not in self.document


# --------------------------------------------------------------------------- reading YAML


def load_yaml_document(text: str, *, source: str = "<string>") -> LoadedDocument:
    """Parse YAML text safely into plain data plus the line/column of every value."""
    try:
        root = _compose(text, source)
        if not isinstance(root, MappingNode):
            raise _top_level_error(root, source)
        builder = _Builder(source)
        builder.measure(root)
        document = builder.build(root, "")
    except RecursionError:
        raise WorkflowFileError("the document is nested too deeply", source=source) from None
    return LoadedDocument(document=document, marks=builder.marks, source=source)


def load_yaml_bytes(raw: bytes, *, source: str = "<bytes>") -> LoadedDocument:
    """Decode strict UTF-8 (a leading BOM is allowed) and parse as :func:`load_yaml_document`."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(raw[: exc.start].decode("utf-8-sig"), exc.start)
        reason = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})"
        raise WorkflowFileError(reason, source=source, line=line, column=column) from None
    return load_yaml_document(text, source=source)


def parse_yaml_body(raw: bytes) -> object:
    """The document of a REST request sent as ``application/yaml`` (the caller checks size)."""
    return load_yaml_bytes(raw, source="<request body>").document


def _compose(text: str, source: str) -> Node | None:
    """The node graph of the single document in ``text`` (libyaml when available)."""
    try:
        loader = _LOADER(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise _marked_error(exc, text, source) from None
    except yaml.reader.ReaderError as exc:  # a control character: find it in the text
        line, column = _position(text, max(text.find(chr(exc.character)), 0))
        reason = f"character U+{exc.character:04X} is not allowed in YAML"
        raise WorkflowFileError(reason, source=source, line=line, column=column) from None
    except yaml.YAMLError as exc:
        raise WorkflowFileError(f"invalid YAML: {exc}", source=source) from None


def _marked_error(exc: yaml.MarkedYAMLError, text: str, source: str) -> WorkflowFileError:
    mark = exc.problem_mark or exc.context_mark
    reason = exc.problem or exc.context or "invalid YAML"
    if exc.context and exc.problem:
        where = exc.context_mark
        started = f" started at line {where.line + 1}" if where is not None else ""
        reason = f"{exc.problem} ({exc.context}{started})"
    if mark is None:
        return WorkflowFileError(reason, source=source)
    if text[mark.index : mark.index + 1] == "\t":
        reason += "; indent YAML with spaces, not tabs"
    return WorkflowFileError(reason, source=source, line=mark.line + 1, column=mark.column + 1)


def _top_level_error(root: Node | None, source: str) -> WorkflowFileError:
    expected = "a workflow is a mapping (with `tasks:`, or `method:` and `url:` for a single call)"
    if root is None:
        return WorkflowFileError(f"the document is empty; {expected}", source=source)
    found = "a list" if isinstance(root, SequenceNode) else "a single value"
    return _error_at(root, f"the top level is {found}; {expected}", source)


def _error_at(node: Node, reason: str, source: str) -> WorkflowFileError:
    line, column = _mark(node)
    return WorkflowFileError(reason, source=source, line=line, column=column)


def _mark(node: Node) -> Mark:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _position(text: str, offset: int) -> Mark:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


_KEY_KINDS = {
    _CORE + "int": "a number",
    _CORE + "float": "a number",
    _CORE + "bool": "a boolean (YAML reads yes/no/on/off/true/false so)",
    _CORE + "null": "null",
    _CORE + "timestamp": "a date",
}


class _Builder:
    """Builds fresh plain values from the composed node graph and records their marks.

    :meth:`measure` runs first: it sizes the document as aliases would expand it (memoised per
    node, so in time linear in the file) and refuses cycles, over-deep nesting and alias bombs
    before :meth:`build` expands anything.
    """

    def __init__(self, source: str) -> None:
        self.constructor = yaml.constructor.SafeConstructor()
        self.source = source
        self.marks: dict[str, Mark] = {}
        self.sizes: dict[int, int] = {}
        self.active: set[int] = set()

    def measure(self, node: Node, depth: int = 0) -> int:
        if isinstance(node, ScalarNode):
            return 1
        if id(node) in self.sizes:
            return self.sizes[id(node)]
        if depth > MAX_DEPTH:
            raise self.error(node, f"the document is nested deeper than {MAX_DEPTH} levels")
        if id(node) in self.active:
            raise self.error(node, "an alias refers to a value that contains it (a cycle)")
        self.active.add(id(node))
        children = node.value if isinstance(node, SequenceNode) else [v for _, v in node.value]
        size = 1 + sum(self.measure(child, depth + 1) for child in children)
        self.active.discard(id(node))
        if size > MAX_VALUES:
            raise self.error(node, f"the document expands to more than {MAX_VALUES} values")
        self.sizes[id(node)] = size
        return size

    def build(self, node: Node, pointer: str) -> Any:
        self.marks[pointer] = _mark(node)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            self.check_tag(node, _SEQ)
            return [self.build(child, f"{pointer}/{i}") for i, child in enumerate(node.value)]
        self.check_tag(node, _MAP)
        return {
            key: self.build(value, f"{pointer}/{escape_token(key)}")
            for key, value in self.entries(node)
        }

    def error(self, node: Node, reason: str) -> WorkflowFileError:
        return _error_at(node, reason, self.source)

    def check_tag(self, node: Node, expected: str) -> None:
        if node.tag == _CORE + "binary":
            raise self.error(node, "binary values (!!binary) cannot be carried in JSON")
        if node.tag != expected:
            raise self.error(node, f"tag {_short_tag(node.tag)} is not allowed; {_PLAIN_DATA}")

    def scalar(self, node: ScalarNode) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self.check_tag(node, _STR)
        try:
            value = self.constructor.construct_object(node)
        except (ValueError, yaml.YAMLError) as exc:
            raise self.error(node, f"cannot read {node.value!r}: {exc}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(node, f"{node.value!r} is not a number JSON can carry")
        if isinstance(value, date | datetime):
            return value.isoformat()
        return value

    def entries(self, node: MappingNode) -> list[tuple[str, Node]]:
        """The (key, value node) pairs of a mapping, merge keys applied (explicit keys win)."""
        explicit: dict[str, Node] = {}
        key_nodes: dict[str, Node] = {}
        merged: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                for key, value in self.merge_sources(value_node):
                    merged.setdefault(key, value)
                continue
            key = self.key(key_node)
            if key in explicit:
                first = _mark(key_nodes[key])[0]
                raise self.error(key_node, f"duplicate key {key!r} (first defined on line {first})")
            explicit[key] = value_node
            key_nodes[key] = key_node
        return list({**merged, **explicit}.items())

    def merge_sources(self, node: Node) -> Iterable[tuple[str, Node]]:
        """Entries a ``<<`` brings in; of several mappings, the earlier one wins."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.error(source, "a merge key (<<) takes a mapping or a list of mappings")
            self.check_tag(source, _MAP)
            yield from self.entries(source)

    def key(self, node: Node) -> str:
        if not isinstance(node, ScalarNode):
            raise self.error(node, "mapping keys must be strings (complex keys are not supported)")
        if node.tag != _STR:
            kind = _KEY_KINDS.get(node.tag, _short_tag(node.tag))
            raise self.error(node, f"the key {node.value!r} is read as {kind}; quote it")
        return str(node.value)
