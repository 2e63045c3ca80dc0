"""JSON pointers (RFC 6901), the one way problems, marks and templates name a place in a document.

A pointer is ``""`` (the whole document) or ``/`` followed by reference tokens joined with ``/``;
inside a token ``~`` is written ``~0`` and ``/`` is written ``~1``. Pure functions, no imports.
"""

from __future__ import annotations

from collections.abc import Iterable


def escape_token(part: str | int) -> str:
    """One reference token: ``a/b~c`` -> ``a~1b~0c`` (an index is written as its digits)."""
    token = part if isinstance(part, str) else str(part)
    if "~" in token or "/" in token:
        return token.replace("~", "~0").replace("/", "~1")
    return token


def unescape_token(token: str) -> str:
    """The key a reference token names: ``a~1b~0c`` -> ``a/b~c`` (``~1`` is read first)."""
    if "~" in token:
        return token.replace("~1", "/").replace("~0", "~")
    return token


def join_pointer(parts: Iterable[str | int]) -> str:
    """The pointer of a path: ``("a/b", 0)`` -> ``/a~1b/0``; no parts -> ``""``."""
    return "".join("/" + escape_token(part) for part in parts)


def split_pointer(pointer: str) -> list[str]:
    """The unescaped tokens of a pointer: ``/a~1b/0`` -> ``["a/b", "0"]``; ``""`` -> ``[]``."""
    return [unescape_token(token) for token in pointer.split("/")[1:]]
