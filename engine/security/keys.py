"""API keys and the principal a key stands for.

A key is a high-entropy random string (``jq_`` + 43 URL-safe characters, 256 bits); the
database keeps only its SHA-256, so a stolen database gives no usable key. Keys from the
environment are given as ``name:key`` entries (a bare ``key`` is named after its hash).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "jq_"
#: what a key name may be: it becomes the owner of the jobs the key creates
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who a request acts as. ``admin`` sees every job and may use the admin endpoints."""

    name: str
    admin: bool = False
    #: true for the principal of an API without keys
    anonymous: bool = False

    @property
    def owner(self) -> str:
        """The owner written on the jobs this principal creates."""
        return "" if self.anonymous else self.name

    @property
    def scope(self) -> str | None:
        """The owner filter of this principal's reads and changes: ``None`` sees all, and an
        anonymous principal that is not an admin sees no job (no owner is ``"anonymous"``)."""
        return None if self.admin else self.name


ANONYMOUS = Principal(name="anonymous", admin=True, anonymous=True)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    """The first characters of a key, shown in listings so that a key can be recognised."""
    return key[: len(KEY_PREFIX) + 4]


def check_name(name: str) -> str:
    if name == ANONYMOUS.name:
        raise ValueError(f"{name!r} is the name of the caller of an API without keys")
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"key name {name!r} must be 1-128 characters: letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    return name


def parse_key_entries(entries: tuple[str, ...], *, admin: bool) -> dict[str, Principal]:
    """``name:key`` or ``key`` entries -> {sha256 of the key: principal}. ValueError on a bad
    entry (the message never contains the key)."""
    out: dict[str, Principal] = {}
    for index, entry in enumerate(entries):
        name, sep, key = entry.partition(":")
        if not sep:
            key, name = name, "key-" + hash_key(name)[:8]
        if len(key) < 16:
            raise ValueError(f"key number {index + 1} is shorter than 16 characters")
        digest = hash_key(key)
        out[digest] = Principal(name=check_name(name), admin=admin)
    return out
