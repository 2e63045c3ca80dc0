"""Secret header values (engine.masking): one list, one mask, for storing and for showing."""

from __future__ import annotations

import logging
import sys

import pytest

from engine.masking import (
    MASK,
    SECRET_HEADERS,
    STORED_SECRET_HEADERS,
    SecretLogFilter,
    mask_headers,
    mask_text,
    mask_view,
)


def test_shown_headers_mask_every_secret_name_in_any_case() -> None:
    headers = {"Authorization": "Bearer x", "X-API-Key": "k", "Set-Cookie": "s=1", "ETag": '"1"'}
    assert mask_headers(headers) == {
        "Authorization": MASK,
        "X-API-Key": MASK,
        "Set-Cookie": MASK,
        "ETag": '"1"',
    }
    assert headers["Authorization"] == "Bearer x"  # a copy: the input is left alone


def test_extra_names_and_another_list() -> None:
    headers = {"set-cookie": "s=1", "authorization": "a", "x-token": "t"}
    stored = mask_headers(headers, frozenset({"x-token"}), secret=STORED_SECRET_HEADERS)
    assert stored == {"set-cookie": MASK, "authorization": "a", "x-token": MASK}
    assert STORED_SECRET_HEADERS <= SECRET_HEADERS


def test_anything_but_a_dict_passes_through() -> None:
    assert mask_headers(None) is None
    assert mask_headers(["authorization"]) == ["authorization"]


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("GET https://user:pw@api.example.org/x", "GET https://***@api.example.org/x"),
        ("http://token@h/ and http://h/ok", "http://***@h/ and http://h/ok"),
        ("Authorization: Bearer abc", "Authorization: ***"),
        ("{'X-Api-Key': 'k1', 'X-A': '1'}", "{'X-Api-Key': '***', 'X-A': '1'}"),
        ('{"cookie": "a=b"}', '{"cookie": "***"}'),
        ("proxy-authorization=Basic q, next", "proxy-authorization=***, next"),
        ("x-authorization-hint: visible", "x-authorization-hint: visible"),
        ("no secret here", "no secret here"),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_mask_text_with_configured_names() -> None:
    assert mask_text("X-Sig: 1 2, X-B: 4", frozenset({"x-sig"})) == "X-Sig: ***, X-B: 4"


def test_mask_view_masks_headers_and_text_but_not_response_bodies() -> None:
    document = {
        "url": "http://u:p@h/",
        "response_headers": {"Set-Cookie": "s", "X-Sig": "v", "X-A": "1"},
        "response_body": "Authorization: the target's own text",
        "tasks": [{"error": {"message": "Cookie: c=1"}}],
    }
    assert mask_view(document, frozenset({"x-sig"})) == {
        "url": "http://***@h/",
        "response_headers": {"Set-Cookie": MASK, "X-Sig": MASK, "X-A": "1"},
        "response_body": "Authorization: the target's own text",
        "tasks": [{"error": {"message": "Cookie: ***"}}],
    }


def test_log_filter_masks_message_and_traceback() -> None:
    secret_filter = SecretLogFilter(frozenset({"X-Sig"}))
    try:
        raise ValueError("X-Sig: 42")
    except ValueError:
        record = logging.LogRecord(
            "jobqueue", logging.ERROR, __file__, 1, "to %s", ("http://a:b@h/",), sys.exc_info()
        )
    assert secret_filter.filter(record)
    assert record.getMessage() == "to http://***@h/"
    assert record.exc_text is not None and "X-Sig: ***" in record.exc_text
