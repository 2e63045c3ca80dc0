"""Secret header values (engine.masking): one list, one mask, for storing and for showing."""

from __future__ import annotations

from engine.masking import MASK, SECRET_HEADERS, STORED_SECRET_HEADERS, mask_headers


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
