"""Jinja2 templates in job documents: sandboxed rendering and static analysis.

Rendering (hot path, in the worker): :func:`render_value` walks a JSON value and renders every
string leaf that holds template syntax; a leaf that is exactly one ``{{ expression }}`` yields the
expression's native value. :func:`evaluate_condition` evaluates a task's ``when``. Both run in
:class:`SandboxEnvironment` (see :mod:`engine.templates.sandbox` for the limits it enforces).

Analysis (creation time, no context): :func:`syntax_problems` and :func:`find_references` parse
each distinct template once (cached) and walk its AST; plain ``{{ a.b[0] }}`` paths skip Jinja's
parser altogether, so validating a job of 10,000 templated tasks stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.parser import Parser

from engine.errors import JobQueueError, Problem
from engine.jsonpointer import escape_token, split_pointer
from engine.templates.references import PathPart, Reference, VariableReference
from engine.templates.sandbox import (
    SandboxEnvironment,
    default_environment,
    render_budget,
    whole_expression,
)

TASK_ATTRIBUTES = frozenset({"output", "status_code", "headers"})


class TemplateError(JobQueueError):
    """A template could not be rendered; ``pointer`` says which string of the job holds it."""

    def __init__(self, message: str, *, pointer: str = "") -> None:
        self.message = message
        self.pointer = pointer
        super().__init__(f"{message} at {pointer}" if pointer else message)


def is_template(s: str) -> bool:
    """True when ``s`` holds Jinja syntax (``{{``, ``{%`` or ``{#``) and must be rendered."""
    return "{{" in s or "{%" in s or "{#" in s


def has_template(value: object) -> bool:
    """True when any string in a JSON value holds template syntax (see :func:`is_template`)."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, dict):
        return any(has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(has_template(v) for v in value)
    return False


def is_whole_expression(s: object) -> bool:
    """True when ``s`` is a string that is exactly one ``{{ expression }}`` (whitespace around
    it allowed)."""
    return isinstance(s, str) and is_template(s) and _analyse(s, False).whole


def build_context(
    *,
    params: Mapping[str, Any],
    job_id: str,
    job_name: str | None,
    upstream: Mapping[str, Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The render context: ``params``, ``tasks.<name>.{output,status_code,headers}``, ``job``,
    and the job's ``extra`` roots fixed at creation (``schedule`` for a schedule's job)."""
    tasks = {
        name: {
            "output": done.get("output"),
            "status_code": done.get("status_code"),
            "headers": done.get("headers"),
        }
        for name, done in upstream.items()
    }
    return {
        **(extra or {}),
        "params": dict(params),
        "tasks": tasks,
        "job": {"id": job_id, "name": job_name},
    }


# --- rendering --------------------------------------------------------------------------------


def render_value(
    value: object,
    context: Mapping[str, Any],
    *,
    pointer: str = "",
    env: SandboxEnvironment | None = None,
) -> object:
    """Render every templated string leaf of a JSON value; dict keys are left alone."""
    env = env or default_environment()
    with render_budget(env):
        return _render(env, value, context, pointer)


def _render(env: SandboxEnvironment, value: object, context: Mapping[str, Any], ptr: str) -> object:
    if isinstance(value, str):
        return _render_string(env, value, context, ptr) if is_template(value) else value
    if isinstance(value, dict):
        return {k: _render(env, v, context, f"{ptr}/{escape_token(k)}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render(env, v, context, f"{ptr}/{i}") for i, v in enumerate(value)]
    return value


def _render_string(
    env: SandboxEnvironment, source: str, context: Mapping[str, Any], pointer: str
) -> object:
    try:
        return env.render(source, context)
    except Exception as exc:
        raise TemplateError(_describe(exc, source, context, False), pointer=pointer) from exc


def evaluate_condition(
    expr: str,
    context: Mapping[str, Any],
    *,
    pointer: str = "",
    env: SandboxEnvironment | None = None,
) -> bool:
    """The truth of a ``when`` expression (written without braces)."""
    env = env or default_environment()
    with render_budget(env):
        try:
            return bool(env.evaluate(expr, context))
        except Exception as exc:
            raise TemplateError(_describe(exc, expr, context, True), pointer=pointer) from exc


def _describe(exc: Exception, source: str, context: Mapping[str, Any], condition: bool) -> str:
    if isinstance(exc, SecurityError):
        return f"refused by the template sandbox: {exc}"
    if isinstance(exc, UndefinedError):
        return _explain_undefined(source, condition, context) or str(exc)
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message} (line {exc.lineno} of the template)"
    return f"template failed: {type(exc).__name__}: {exc}"


def _explain_undefined(source: str, condition: bool, context: Mapping[str, Any]) -> str | None:
    """``tasks.search.output.results is undefined (tasks.search.output has keys: count)``."""
    for chain in _analyse(source, condition).chains:
        if chain.root is None or chain.root not in context:
            continue
        value, path = context[chain.root], chain.root
        for part in chain.parts:
            if part is None:
                break
            found, child = _lookup(value, part)
            if not found:
                return f"{path}{_fmt(part)} is undefined ({_shape(path, value)})"
            value, path = child, f"{path}{_fmt(part)}"
    return None


def _lookup(value: Any, part: PathPart) -> tuple[bool, Any]:
    if isinstance(value, Mapping):
        if part in value:
            return True, value[part]
    elif isinstance(value, list | tuple) and isinstance(part, int):
        if -len(value) <= part < len(value):
            return True, value[part]
    if isinstance(part, str) and not part.startswith("_") and hasattr(value, part):
        return True, getattr(value, part)
    return False, None


def _fmt(part: PathPart) -> str:
    if isinstance(part, str) and _IDENT.fullmatch(part):
        return f".{part}"
    return f"[{part!r}]"


def _shape(path: str, value: Any) -> str:
    if isinstance(value, Mapping):
        keys = ", ".join(map(str, list(value)[:10])) + (", ..." if len(value) > 10 else "")
        return f"{path} has keys: {keys}" if keys else f"{path} is an empty object"
    if isinstance(value, list | tuple):
        return f"{path} is a list of {len(value)} items"
    if value is None:
        return f"{path} is null"
    return f"{path} is a {type(value).__name__}"


# --- analysis: parse once, walk the AST -------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART = r"""\.[A-Za-z_][A-Za-z0-9_]*|\[\s*(?:0|[1-9][0-9]*|'[^'\\\n{}]*'|"[^"\\\n{}]*")\s*\]"""
#: ``{{ name.attr[0]['key'] }}``; splitting a string on it leaves text, path, text, path, ...
_SIMPLE = re.compile(rf"\{{\{{-?\s*([A-Za-z_][A-Za-z0-9_]*(?:{_PART})*)\s*-?\}}\}}")
_PART_RE = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:([0-9]+)|'([^']*)'|"([^"]*)")\s*\]""")
_NOT_NAMES = frozenset({"true", "false", "none", "True", "False", "None", "not"})
_LOADER_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class _Chain(NamedTuple):
    """One maximal ``name.attr[key]...`` chain of a template."""

    #: the variable the chain starts from (``None`` when it starts at another expression)
    root: str | None
    #: constant parts; ``None`` where a subscript is not a constant
    parts: tuple[PathPart | None, ...]
    #: the chain is called: ``tasks.x.output.get('a')``
    callee: bool
    #: the chain is the whole expression of a string that is exactly one ``{{ }}``
    whole: bool


class _Shape(NamedTuple):
    """A reference without its place: what one template reads, found once per source."""

    task: str
    attr: str | None
    path: tuple[PathPart, ...]
    whole: bool
    dynamic: bool


class _Parsed(NamedTuple):
    chains: tuple[_Chain, ...] = ()
    refs: tuple[_Shape, ...] = ()
    whole: bool = False
    error: str | None = None
    lineno: int = 1


@lru_cache(maxsize=1 << 16)
def _analyse(source: str, condition: bool) -> _Parsed:
    fast = None if condition else _fast_chains(source)
    error, lineno = None, 1
    if fast is not None:
        chains, whole = fast
    else:
        env = default_environment()
        try:
            tree: nodes.Node = _parse_expression(env, source) if condition else env.parse(source)
        except TemplateSyntaxError as exc:
            return _Parsed(error=exc.message or str(exc), lineno=exc.lineno or 1)
        error, lineno = _unsupported(env, tree)
        expr = None if condition else whole_expression(tree)
        chains, whole = tuple(_ast_chains(tree, expr)), expr is not None
    refs = tuple(ref for ref in map(_shape_of, chains) if ref is not None)
    return _Parsed(chains=chains, refs=refs, whole=whole, error=error, lineno=lineno)


def _fast_chains(source: str) -> tuple[tuple[_Chain, ...], bool] | None:
    """The chains of text with plain ``{{ a.b[0] }}`` paths, found without Jinja's lexer, and
    whether the text is one ``{{ }}``; ``None`` for anything else (which Jinja then parses)."""
    pieces = _SIMPLE.split(source)
    if len(pieces) == 1:
        return None
    texts, paths = pieces[0::2], pieces[1::2]
    for k, text in enumerate(texts):
        if "{{" in text or "{%" in text or "{#" in text or (k < len(paths) and text[-1:] == "{"):
            return None
    whole = len(paths) == 1 and not "".join(texts).strip()
    chains = []
    for path in paths:
        root = _IDENT.match(path)
        if root is None or root.group() in _NOT_NAMES:
            return None
        parts: list[PathPart] = []
        for attr, number, single, double in _PART_RE.findall(path, root.end()):
            parts.append(attr or (int(number) if number else single or double))
        chains.append(_Chain(root=root.group(), parts=tuple(parts), callee=False, whole=whole))
    return tuple(chains), whole


def _parse_expression(env: SandboxEnvironment, source: str) -> nodes.Expr:
    parser = Parser(env, source, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        token = parser.stream.current
        raise TemplateSyntaxError(f"unexpected {token.value!r} after the expression", token.lineno)
    return expr


def _unsupported(env: SandboxEnvironment, tree: nodes.Node) -> tuple[str | None, int]:
    """What Jinja's parser accepts but rendering would refuse: unknown filters/tests, loaders."""
    for node in tree.find_all((nodes.Filter, nodes.Test, *_LOADER_NODES)):
        if isinstance(node, nodes.Filter) and node.name not in env.filters:
            return f"no filter named {node.name!r}", node.lineno
        if isinstance(node, nodes.Test) and node.name not in env.tests:
            return f"no test named {node.name!r}", node.lineno
        if isinstance(node, _LOADER_NODES):
            return "extends, include and import are not available in job templates", node.lineno
    return None, 1


def _leaves(
    value: object, pointer: str, path: tuple[PathPart, ...]
) -> Iterator[tuple[str, str, tuple[PathPart, ...]]]:
    """Every templated string leaf: (source, JSON pointer, path from the start)."""
    if isinstance(value, str):
        if is_template(value):
            yield value, pointer, path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{pointer}/{escape_token(key)}", (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{pointer}/{index}", (*path, index))


def _sources(
    value: object, pointer: str, condition: bool
) -> Iterator[tuple[str, str, tuple[PathPart, ...]]]:
    if condition:
        if isinstance(value, str):
            yield value, pointer, ()
        return
    yield from _leaves(value, pointer, ())


def syntax_problems(
    value: object, *, pointer: str, task: str | None, condition: bool = False
) -> list[Problem]:
    """A ``template_syntax`` problem for every string leaf (or ``when`` expression) that does not
    compile; ``condition=True`` reads ``value`` as one expression written without braces."""
    problems = []
    for source, where, _ in _sources(value, pointer, condition):
        parsed = _analyse(source, condition)
        if parsed.error is not None:
            problems.append(
                Problem(
                    code="template_syntax",
                    task=task,
                    location=where,
                    message=f"template syntax error: {parsed.error}"
                    f" (line {parsed.lineno} of the {'expression' if condition else 'template'})",
                    actual=source if len(source) <= 200 else source[:200] + "...",
                )
            )
    return problems


def find_references(
    value: object, *, pointer: str, body_root: str | None = None, condition: bool = False
) -> list[Reference]:
    """Every ``tasks.<name>...`` reference in the templates of a JSON value (or, with
    ``condition=True``, in one ``when`` expression). ``body_root`` is the pointer of the task's
    body when ``value`` is (inside) the body, so each reference knows its place there."""
    base = _body_base(pointer, body_root)
    found: list[Reference] = []
    for source, where, rel in _sources(value, pointer, condition):
        body_path = None if base is None else base + rel
        found.extend(
            Reference(
                task=ref.task,
                attr=ref.attr,  # type: ignore[arg-type]
                path=ref.path,
                pointer=where,
                body_path=body_path,
                whole=ref.whole,
                dynamic=ref.dynamic,
            )
            for ref in _analyse(source, condition).refs
        )
    return found


def find_variable_references(
    value: object,
    *,
    roots: frozenset[str],
    pointer: str,
    body_root: str | None = None,
    condition: bool = False,
) -> list[VariableReference]:
    """Every read of a variable in ``roots`` (``params``, ``item``) in the templates of a JSON
    value, like :func:`find_references` for ``tasks``."""
    base = _body_base(pointer, body_root)
    found: list[VariableReference] = []
    for source, where, rel in _sources(value, pointer, condition):
        bound = _locally_bound(source) if "{%" in source else frozenset()
        for chain in _analyse(source, condition).chains:
            root = chain.root
            if root is None or root not in roots or root in bound:
                continue
            parts = list(chain.parts)
            dynamic = chain.callee and bool(parts)
            if dynamic:
                parts.pop()
            path: list[PathPart] = []
            for part in parts:
                if part is None:
                    dynamic = True
                    break
                path.append(part)
            found.append(
                VariableReference(
                    root=root,
                    path=tuple(path),
                    pointer=where,
                    body_path=None if base is None else base + rel,
                    whole=chain.whole and not dynamic,
                    dynamic=dynamic,
                )
            )
    return found


_BINDING = re.compile(r"\{%-?\s*(?:for|set)\s+([^%]*?)(?:\s+in\s|=|-?%\})")


def _locally_bound(source: str) -> frozenset[str]:
    """Names a template binds itself (``{% for item in ... %}``, ``{% set x = ... %}``): a
    chain that starts from one reads the template's own variable, not the context's."""
    names: set[str] = set()
    for targets in _BINDING.findall(source):
        names.update(n.strip() for n in targets.split(",") if n.strip())
    return frozenset(names)


def root_reads(
    value: object, root: str, *, pointer: str, condition: bool = False
) -> list[tuple[str, tuple[PathPart | None, ...]]]:
    """Where the templates of a JSON value (or one ``when`` expression) read the context root
    ``root``: (JSON pointer of the string, the constant parts after the root; ``None`` for a
    part that is not a constant)."""
    return [
        (where, chain.parts)
        for source, where, _ in _sources(value, pointer, condition)
        if root in source  # most templates never name the root: skip the analysis
        for chain in _analyse(source, condition).chains
        if chain.root == root
    ]


def _body_base(pointer: str, body_root: str | None) -> tuple[PathPart, ...] | None:
    if body_root is None or not (pointer == body_root or pointer.startswith(body_root + "/")):
        return None
    tokens = split_pointer(pointer[len(body_root) :])
    return tuple(int(t) if t.isdigit() else t for t in tokens)


def _ast_chains(tree: nodes.Node, whole: nodes.Expr | None) -> Iterator[_Chain]:
    """Every maximal ``name.attr[key]...`` chain of an AST, in document order."""
    stack: list[tuple[nodes.Node, bool]] = [(tree, False)]
    while stack:
        node, callee = stack.pop()
        children: list[tuple[nodes.Node, bool]]
        if isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Name):
            root, parts, dynamic = _unwind(node)
            name = root.name if isinstance(root, nodes.Name) else None
            yield _Chain(root=name, parts=parts, callee=callee, whole=node is whole and not callee)
            children = [(n, False) for n in dynamic]
            if name is None:
                children.insert(0, (root, False))
        elif isinstance(node, nodes.Call):
            rest = [(n, False) for n in node.iter_child_nodes() if n is not node.node]
            children = [(node.node, True), *rest]
        else:
            children = [(n, False) for n in node.iter_child_nodes()]
        stack.extend(reversed(children))


def _unwind(node: nodes.Node) -> tuple[nodes.Node, tuple[PathPart | None, ...], list[nodes.Node]]:
    parts: list[PathPart | None] = []
    dynamic: list[nodes.Node] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and type(node.arg.value) in (str, int):
            parts.append(node.arg.value)
        else:
            parts.append(None)
            dynamic.append(node.arg)
        node = node.node
    parts.reverse()
    dynamic.reverse()
    return node, tuple(parts), dynamic


def _shape_of(chain: _Chain) -> _Shape | None:
    """What a ``tasks.<name>...`` chain reads (``None`` for any other chain)."""
    if chain.root != "tasks":
        return None
    parts = list(chain.parts)
    dynamic = False
    if chain.callee and parts:  # tasks.x.output.get('a'): the last part is a method name
        parts.pop()
        dynamic = True
    if not parts or not isinstance(parts[0], str):
        return None
    head = parts[1] if len(parts) > 1 else None
    attr = head if isinstance(head, str) and head in TASK_ATTRIBUTES else None
    dynamic = dynamic or (len(parts) > 1 and head is None)
    path: list[PathPart] = []
    for part in parts[2:] if attr else ():
        if part is None:
            dynamic = True
            break
        path.append(part)
    whole = chain.whole and not dynamic
    return _Shape(task=parts[0], attr=attr, path=tuple(path), whole=whole, dynamic=dynamic)
