"""API key entries of the environment, and what a principal may see."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import Settings
from engine import ANONYMOUS, Principal, parse_key_entries
from engine.security.keys import hash_key, new_key


def test_entries_are_named_or_named_after_their_hash() -> None:
    named = parse_key_entries(("alice:0123456789abcdef",), admin=False)
    assert named == {hash_key("0123456789abcdef"): Principal(name="alice")}
    [bare] = parse_key_entries(("fedcba9876543210",), admin=True).values()
    assert bare.name == "key-" + hash_key("fedcba9876543210")[:8] and bare.admin


def test_a_short_key_or_a_bad_name_is_refused_without_showing_the_key() -> None:
    with pytest.raises(ValueError, match="shorter than 16") as short:
        parse_key_entries(("alice:tiny-key",), admin=False)
    assert "tiny-key" not in str(short.value)
    with pytest.raises(ValueError, match="key name"):
        parse_key_entries(("bad name:0123456789abcdef",), admin=False)
    with pytest.raises(ValueError, match="without keys"):
        parse_key_entries(("anonymous:0123456789abcdef",), admin=False)


def test_settings_refuse_a_key_given_twice_and_never_print_keys() -> None:
    with pytest.raises(ValidationError) as twice:
        Settings(api_keys="a:0123456789abcdef", admin_keys="b:0123456789abcdef")
    assert "0123456789abcdef" not in str(twice.value)
    settings = Settings(api_keys="a:0123456789abcdef")
    assert "0123456789abcdef" not in repr(settings)
    assert "0123456789abcdef" not in repr(settings.engine_config())


def test_scope_admin_sees_all_others_their_own() -> None:
    assert Principal(name="a").scope == "a" and Principal(name="r", admin=True).scope is None
    assert ANONYMOUS.scope is None and ANONYMOUS.owner == ""
    assert new_key() != new_key() and len(new_key()) == 46
