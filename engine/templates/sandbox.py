"""The Jinja2 sandbox job templates render in: no template can allocate or loop without bound.

:class:`SandboxEnvironment` is an ``ImmutableSandboxedEnvironment`` (no attribute starting with
``_``, no ``mro``/``__class__`` walks, no mutation of lists and dicts) with ``StrictUndefined``
and autoescape off, plus these limits:

- every value a template produces (a rendered string, a native value, the result of ``*``,
  ``+``, ``%``, ``~``, ``str`` methods and the widening filters) is at most
  ``max_output_bytes``; a render may produce at most ``16 * max_output_bytes`` in all;
- ``**`` and integer ``*`` refuse results wider than :data:`MAX_INT_BITS`;
- ``range`` returns at most ``max_range`` items; ``lipsum`` is gone;
- every call, loop step and intercepted operator checks a deadline of ``max_render_seconds``.

``x.name`` on a JSON object reads the key ``name`` even where ``dict`` has a method of that name
(``output.items``, ``output.keys``), as the interface checker assumes.

Loops and ``~`` are reached through an AST rewrite before code generation (``For.iter`` and
``Concat`` become calls of ``environment.jq_iter`` / ``environment.jq_concat``).
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any

from jinja2 import StrictUndefined, Template, Undefined, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

DEFAULT_MAX_OUTPUT_BYTES = 1 << 20
DEFAULT_MAX_RANGE = 100_000
DEFAULT_MAX_RENDER_SECONDS = 1.0
MAX_INT_BITS = 8192
_TOTAL_FACTOR = 16
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_SEQUENCES = (str, bytes, list, tuple)
_PLAIN = frozenset({str, int, float, bool, type(None)})


@dataclass(slots=True)
class _Budget:
    deadline: float
    seconds: float
    left: int


_BUDGET: ContextVar[_Budget | None] = ContextVar("jobqueue_template_budget", default=None)


class render_budget:  # used like a function: ``with render_budget(env):``
    """Start a render's time and allocation budget (a nested call shares the outer one)."""

    __slots__ = ("env", "token")

    def __init__(self, env: SandboxEnvironment) -> None:
        self.env = env
        self.token: Token[_Budget | None] | None = None

    def __enter__(self) -> None:
        if _BUDGET.get() is None:
            env = self.env
            budget = _Budget(
                deadline=time.monotonic() + env.max_render_seconds,
                seconds=env.max_render_seconds,
                left=env.max_output_bytes * _TOTAL_FACTOR,
            )
            self.token = _BUDGET.set(budget)

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            _BUDGET.reset(self.token)


def approx_size(value: Any, limit: int) -> int:
    """About how many bytes ``value`` takes as text; stops counting past ``limit``.

    A container counts one per element (so a long list is refused before it is walked), a string
    its length; shared references count every time, as they would once serialised.
    """
    if not isinstance(value, str | bytes | list | tuple | Mapping):
        return 1
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, list | tuple):
            total += len(item)
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
    return total


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The one Jinja2 environment of job templates; compiled templates are cached by source."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(
        self,
        *,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        max_range: int = DEFAULT_MAX_RANGE,
        max_render_seconds: float = DEFAULT_MAX_RENDER_SECONDS,
        cache_size: int = 4096,
    ) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, cache_size=0)
        self.max_output_bytes = max_output_bytes
        self.max_range = max_range
        self.max_render_seconds = max_render_seconds
        self.globals.pop("lipsum", None)
        self.globals["range"] = self._range
        self.jq_iter = self._iterate
        self.jq_concat = self._concat
        _guard_filters(self)
        self._template = lru_cache(maxsize=cache_size)(self._compile_template)
        self._condition = lru_cache(maxsize=cache_size)(self._compile_condition)

    # -- rendering --

    def render(self, source: str, context: Mapping[str, Any]) -> Any:
        """``source`` rendered: a native value when it is one ``{{ expr }}``, else text."""
        compiled = self._template(source)
        if isinstance(compiled, TemplateExpression):
            return self.to_native(compiled(context))
        total = 0
        chunks = []
        for chunk in compiled.generate(context):
            total += len(chunk)
            if total > self.max_output_bytes:
                raise SecurityError(f"the rendered text exceeds {self.max_output_bytes:,} bytes")
            chunks.append(chunk)
        text = "".join(chunks)
        if total * 4 > self.max_output_bytes:
            total = len(text.encode("utf-8", "surrogatepass"))
        self.charge(total, "the rendered text")
        return text

    def evaluate(self, source: str, context: Mapping[str, Any]) -> Any:
        """The value of an expression written without braces (a ``when``)."""
        value = self._condition(source)(context)
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return value

    def to_native(self, value: Any) -> Any:
        """A JSON-compatible copy of an expression's value (Undefined raises)."""
        left = [self.max_output_bytes]
        native = self._native(value, left)
        if left[0] < 0:
            raise SecurityError(f"the value exceeds {self.max_output_bytes:,} bytes")
        return native

    def _native(self, item: Any, left: list[int]) -> Any:
        kind = type(item)
        if kind in _PLAIN:
            left[0] -= len(item) if kind is str else 1
            return item
        if isinstance(item, Undefined):
            item._fail_with_undefined_error()
        self.tick()
        if left[0] < 0:
            raise SecurityError(f"the value exceeds {self.max_output_bytes:,} bytes")
        if isinstance(item, Mapping):
            return {_json_key(k): self._native(v, left) for k, v in item.items()}
        if isinstance(item, str | bool | int | float):  # subclasses: Markup, IntEnum, ...
            return self._native(str(item) if isinstance(item, str) else item.real, left)
        if isinstance(item, Iterable) and not isinstance(item, bytes):
            out = []
            for v in item:
                if type(v) in _PLAIN:
                    left[0] -= len(v) if type(v) is str else 1
                    out.append(v)
                else:
                    out.append(self._native(v, left))
            return out
        raise TypeError(f"a {type(item).__name__} cannot be sent as JSON")

    def _compile_template(self, source: str) -> Template | TemplateExpression:
        tree = self.parse(source)
        expr = whole_expression(tree)
        if expr is None:
            return self.from_string(tree)
        native = nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr)], lineno=1)
        native.set_lineno(1)
        native.set_environment(self)
        return TemplateExpression(self.from_string(native), False)

    def _compile_condition(self, source: str) -> TemplateExpression:
        return self.compile_expression(source, undefined_to_none=False)

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        _Rewrite(self).visit(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    # -- limits --

    def tick(self) -> None:
        budget = _BUDGET.get()
        if budget is not None and time.monotonic() > budget.deadline:
            raise SecurityError(f"rendering took longer than {budget.seconds:g} s")

    def charge(self, size: int, what: str) -> None:
        """Refuse to make ``what`` when it would take ``size`` bytes beyond the limits."""
        if size > self.max_output_bytes:
            raise SecurityError(
                f"{what} would take {size:,} bytes, above the {self.max_output_bytes:,}-byte limit"
            )
        budget = _BUDGET.get()
        if budget is not None:
            budget.left -= size
            if budget.left < 0:
                raise SecurityError("the template allocates too much in total")
            if time.monotonic() > budget.deadline:
                raise SecurityError(f"rendering took longer than {budget.seconds:g} s")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        cap = self.max_output_bytes
        if isinstance(left, int) and isinstance(right, int):
            _check_int_op(operator, left, right)
        elif operator == "*":
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, _SEQUENCES) and isinstance(times, int):
                self.charge(approx_size(seq, cap) * max(times, 0), f"{type(seq).__name__} * n")
        elif operator == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            self.charge(approx_size(left, cap) + approx_size(right, cap), "'+'")
        elif operator == "%" and isinstance(left, str):
            self.charge(_printf_size(left), "'%' formatting")
        return self.binop_table[operator](left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.tick()
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str | bytes):
            name = getattr(obj, "__name__", "")
            if name == "join" and args:
                args = (list(args[0]), *args[1:])
            size = _method_size(owner, name, args, kwargs, self.max_output_bytes)
            self.charge(size, f"{type(owner).__name__}.{name}")
        return super().call(context, obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``output.items`` is the key ``items`` of a JSON object, not ``dict.items``."""
        if isinstance(obj, dict) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            self.charge(_format_size(value.__self__), "str.format")
        return wrapper

    def _range(self, *args: int) -> range:
        self.tick()
        items = range(*args)
        try:
            count = len(items)
        except OverflowError:
            count = self.max_range + 1
        if count > self.max_range:
            raise SecurityError(f"range() of more than {self.max_range:,} items is not allowed")
        return items

    def _iterate(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.tick()
            yield item

    def _concat(self, *parts: Any) -> str:
        texts = [str(p) for p in parts]
        self.charge(sum(map(len, texts)), "'~'")
        return "".join(texts)


class _Rewrite(NodeTransformer):
    """Route loops and ``~`` through the environment, where they are counted and capped."""

    def __init__(self, env: SandboxEnvironment) -> None:
        self.env = env

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._call("jq_iter", [node.iter], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._call("jq_concat", node.nodes, node.lineno)

    def _call(self, attr: str, args: Sequence[nodes.Node], lineno: int) -> nodes.Call:
        call = nodes.Call(nodes.EnvironmentAttribute(attr), list(args), [], None, None)
        call.set_lineno(lineno)
        call.set_environment(self.env)
        return call


def whole_expression(tree: nodes.Node) -> nodes.Expr | None:
    """The expression of a template that is exactly one ``{{ }}`` (whitespace around allowed)."""
    body = getattr(tree, "body", [])
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    exprs = [
        n for n in body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())
    ]
    if len(exprs) == 1 and not isinstance(exprs[0], nodes.TemplateData):
        return exprs[0]
    return None


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    if key is None or isinstance(key, bool | int | float):
        return str(key)
    raise TypeError(f"a {type(key).__name__} cannot be a JSON object key")


def _check_int_op(operator: str, left: int, right: int) -> None:
    if operator == "**" and right > 0 and abs(left) > 1:
        bits = (abs(left).bit_length() - 1) * right
    elif operator == "*":
        bits = left.bit_length() + right.bit_length()
    else:
        return
    if bits > MAX_INT_BITS:
        raise SecurityError(f"'{operator}' would make an integer wider than {MAX_INT_BITS} bits")


def _printf_size(fmt: str) -> int:
    size = len(fmt)
    for width, precision in _PRINTF.findall(fmt):
        if "*" in (width, precision):
            raise SecurityError("'*' widths in %-formats are not allowed")
        size += int(width or 0) + int(precision or 0)
    return size


def _format_size(fmt: str) -> int:
    size = len(fmt)
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return size
    for _, _, spec, _ in fields:
        if spec and "{" in spec:
            raise SecurityError("nested fields in a format spec are not allowed")
        size += sum(int(n) for n in re.findall(r"\d+", spec or ""))
    return size


def _method_size(
    owner: str | bytes, name: str, args: tuple[Any, ...], kw: dict[str, Any], cap: int
) -> int:
    """What ``owner.name(*args)`` would take, for the methods that can widen a string."""
    try:
        if name in _WIDTH_METHODS:
            return max(len(owner), int(args[0] if args else kw["width"]))
        if name == "expandtabs":
            return len(owner) * max(1, int(args[0] if args else kw.get("tabsize", 8)))
        if name == "replace":
            return _replace_size(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
        if name == "join":
            items = args[0]
            return approx_size(items, cap) + len(owner) * len(items)
        if name == "translate":
            values = args[0].values() if isinstance(args[0], Mapping) else ()
            widest = max((len(v) for v in values if isinstance(v, str | bytes)), default=1)
            return len(owner) * max(widest, 1)
    except (IndexError, KeyError, TypeError, ValueError):
        return 0
    return 0


def _replace_size(s: Any, old: Any, new: Any, count: Any) -> int:
    occurrences = s.count(old) if old else len(s) + 1
    if isinstance(count, int) and count >= 0:
        occurrences = min(occurrences, count)
    return len(s) + occurrences * max(len(new) - len(old), 0)


def _guard_filters(env: SandboxEnvironment) -> None:
    """Wrap the filters whose output can be much larger than their input."""
    cap = env.max_output_bytes

    def indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
        w = len(width) if isinstance(width, str) else int(width)
        return len(str(s)) + w * (str(s).count("\n") + 1)

    def tojson(value: Any, indent: Any = None) -> int:
        if indent is not None and (not isinstance(indent, int) or indent > 16):
            raise SecurityError("tojson indent above 16 is not allowed")
        return approx_size(value, cap) * (1 + (indent or 0))

    def total(value: Any, attribute: Any = None, start: Any = 0) -> int:
        if not isinstance(start, int | float):
            raise SecurityError("sum() with a start that is not a number is not allowed")
        return 0

    def wordwrap(s: Any, width: Any = 79, _b: Any = True, wrapstring: Any = None, **_: Any) -> int:
        return len(str(s)) * (1 + len(wrapstring or "\n"))

    estimates: dict[str, Callable[..., int]] = {
        "center": lambda value, width=80: max(len(str(value)), int(width)),
        "indent": indent,
        "format": lambda value, *a, **k: _printf_size(str(value)),
        "replace": lambda s, old, new, count=None: _replace_size(str(s), str(old), str(new), count),
        "join": lambda value, d="", attribute=None: approx_size(value, cap) + len(d) * len(value),
        "wordwrap": wordwrap,
        "tojson": tojson,
        "batch": lambda value, linecount, fill_with=None: int(linecount) + len(value),
        "slice": lambda value, slices, fill_with=None: int(slices) + len(value),
        "sum": total,
    }
    for name, estimate in estimates.items():
        env.filters[name] = _guarded(env, name, env.filters[name], estimate)


def _guarded(
    env: SandboxEnvironment, name: str, original: Callable[..., Any], estimate: Callable[..., int]
) -> Callable[..., Any]:
    skip = 1 if getattr(original, "jinja_pass_arg", None) is not None else 0

    @wraps(original)
    def filter_(*args: Any, **kwargs: Any) -> Any:
        head, value, rest = args[:skip], args[skip], args[skip + 1 :]
        if not isinstance(value, str | Mapping) and isinstance(value, Iterable):
            value = list(value)
        env.charge(estimate(value, *rest, **kwargs), f"the {name} filter")
        return original(*head, value, *rest, **kwargs)

    return filter_


@lru_cache(maxsize=1)
def default_environment() -> SandboxEnvironment:
    """The shared environment with the default limits (templates compiled once per process)."""
    return SandboxEnvironment()
