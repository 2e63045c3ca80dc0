"""JSON pointers (engine.jsonpointer): the one escaping rule of RFC 6901."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.jsonpointer import escape_token, join_pointer, split_pointer, unescape_token


def test_escape_and_unescape_one_token() -> None:
    assert escape_token("a/b~c") == "a~1b~0c"
    assert escape_token("plain") == "plain"
    assert escape_token(3) == "3"
    assert unescape_token("a~1b~0c") == "a/b~c"
    assert unescape_token("~01") == "~1"  # ~1 is read first, so ~01 is "~1", never "/"


def test_join_and_split() -> None:
    assert join_pointer(()) == ""
    assert join_pointer(["tasks", 0, "body", "x/y", "~"]) == "/tasks/0/body/x~1y/~0"
    assert split_pointer("") == []
    assert split_pointer("/tasks/0/body/x~1y/~0") == ["tasks", "0", "body", "x/y", "~"]
    assert split_pointer("/") == [""]


@given(st.lists(st.text()))
def test_split_inverts_join(parts: list[str]) -> None:
    assert split_pointer(join_pointer(parts)) == parts
