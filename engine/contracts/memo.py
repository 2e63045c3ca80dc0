"""A memo for schema questions asked many times within one validation run.

A 10,000-task fan-out asks the same "is this producer schema compatible with that consumer
schema" question 10,000 times about the same two dict objects. Answers are keyed on the
identities of the schema objects; the memo holds a reference to every keyed object so an id
cannot be reused while the scope lasts. Outside :func:`memo_scope` nothing is memoized.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_MEMO: ContextVar[dict[tuple[Any, ...], tuple[Any, tuple[Any, ...]]] | None] = ContextVar(
    "schema_memo", default=None
)


@contextmanager
def memo_scope() -> Iterator[None]:
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def cached(kind: str, objects: tuple[Any, ...], extra: Any, compute: Callable[[], T]) -> T:
    """``compute()``, or its earlier answer for the same objects (by identity) and ``extra``."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    key = (kind, *map(id, objects), extra)
    hit = memo.get(key)
    if hit is not None:
        return hit[0]  # type: ignore[no-any-return]
    value = compute()
    memo[key] = (value, objects)
    return value
