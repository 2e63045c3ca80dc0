"""Keys and the audit log as the :class:`~engine.service.Engine` offers them: what the REST API
and ``jobqueue keys`` share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from engine.errors import Conflict
from engine.jobs.views import iso
from engine.security.keyring import KeyRing
from engine.security.keys import check_name, hash_key, key_prefix, new_key
from engine.store import NewJob, Store
from engine.store.audit import (
    AuditEntry,
    AuditFilter,
    decode_audit_cursor,
    encode_audit_cursor,
)


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who makes a change, for the audit log: a key's name (or ``anonymous``) and the client's
    address."""

    name: str
    address: str | None = None

    def entry(self, action: str, target: str | None = None) -> AuditEntry:
        return AuditEntry(actor=self.name, action=action, target=target, address=self.address)


def audit_entry(by: Actor | None, action: str, target: str | None = None) -> AuditEntry | None:
    return None if by is None else by.entry(action, target)


def audit_creation(rows: NewJob, by: Actor | None) -> None:
    """Let the rows of a new job carry its ``job.create`` audit row (inserted with the job)."""
    if by is not None:
        rows.audit = by.entry("job.create").row(rows.job["id"], rows.job["created_at"])


def _key_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "name": row.name,
        "admin": row.admin,
        "source": "database",
        "prefix": row.prefix,
        "created_at": iso(row.created_at),
        "revoked_at": iso(row.revoked_at),
    }


def _audit_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": iso(row.at),
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "address": row.address,
    }


class Access:
    def __init__(self, store: Store, keyring: KeyRing) -> None:
        self._store = store
        self.keyring = keyring

    async def create_key(
        self, name: str, *, admin: bool = False, by: Actor | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A new key: (the key, shown only now; its listing entry)."""
        check_name(name)
        if any(p.name == name for p in self.keyring.env_principals):
            raise Conflict(f"a key named {name!r} is configured in the environment")
        key = new_key()
        row = await self._store.create_key(
            name=name,
            key_hash=hash_key(key),
            prefix=key_prefix(key),
            admin=admin,
            audit=audit_entry(by, "key.create", name),
        )
        self.keyring.invalidate()
        return key, _key_view(row)

    async def revoke_key(self, name: str, *, by: Actor | None = None) -> None:
        if any(p.name == name for p in self.keyring.env_principals):
            raise Conflict(
                f"key {name!r} is configured in the environment: remove it from "
                "JOBQUEUE_API_KEYS / JOBQUEUE_ADMIN_KEYS and restart"
            )
        await self._store.revoke_key(name, audit=audit_entry(by, "key.revoke", name))
        self.keyring.invalidate()

    async def list_keys(self, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        env = [
            {
                "name": p.name,
                "admin": p.admin,
                "source": "environment",
                "prefix": None,
                "created_at": None,
                "revoked_at": None,
            }
            for p in self.keyring.env_principals
        ]
        rows = await self._store.keys(active_only=not include_revoked)
        return env + [_key_view(r) for r in rows]

    async def audit_log(
        self, flt: AuditFilter, *, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        before_id = decode_audit_cursor(cursor) if cursor else None
        rows = await self._store.audit_entries(flt, limit=limit, before_id=before_id)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_audit_cursor(rows[-1].id) if more and rows else None
        return {"items": [_audit_view(r) for r in rows], "next_cursor": next_cursor}
