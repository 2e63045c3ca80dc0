"""The audit log: who changed what, when, from where.

A change and its audit row commit together: :class:`Audited` wraps a write op and inserts the
row in the op's transaction (a change that fails writes no row); a submission carries its row in
:class:`~engine.store.submit.NewJob` so that batched inserts stay batched. Rows hold names, ids
and addresses only, never a request body or a header value.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.store.tables import audit_log
from engine.store.writer import WriteOp

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    actor: str
    action: str
    target: str | None = None
    address: str | None = None

    def row(self, target: str | None = None, at: float | None = None) -> dict[str, Any]:
        return {
            "at": time.time() if at is None else at,
            "actor": self.actor,
            "action": self.action,
            "target": target if target is not None else self.target,
            "address": self.address,
        }


async def insert_entries(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(audit_log), list(rows))


class Audited(WriteOp[T]):
    """``op`` and its audit row in one transaction. ``target_of`` names the target from the
    op's result when the entry does not (a created master's id)."""

    batchable = False

    def __init__(self, op: WriteOp[T], entry: AuditEntry, target_of: Any = None) -> None:
        self.op = op
        self.entry = entry
        self.target_of = target_of

    async def apply(self, conn: AsyncConnection) -> T:
        self.op.wakes = False
        result = await self.op.apply(conn)
        self.wakes = self.op.wakes
        target = self.target_of(result) if self.target_of is not None else None
        await insert_entries(conn, [self.entry.row(target)])
        return result


def audited(op: WriteOp[T], entry: AuditEntry | None, target_of: Any = None) -> WriteOp[T]:
    return op if entry is None else Audited(op, entry, target_of)


@dataclass(frozen=True, kw_only=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    after: float | None = None
    before: float | None = None


def encode_audit_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{row_id}".encode()).decode().rstrip("=")


def decode_audit_cursor(cursor: str) -> int:
    """Raises ValueError on anything that is not a cursor we made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except Exception as exc:
        raise ValueError("cursor is not valid") from exc
    if not raw.startswith("a") or not raw[1:].isdigit():
        raise ValueError("cursor is not valid")
    return int(raw[1:])


async def audit_rows(
    conn: AsyncConnection, flt: AuditFilter, *, limit: int, before_id: int | None
) -> list[Row[Any]]:
    """Newest first; keyset paging on the row id."""
    query = select(audit_log)
    if flt.actor is not None:
        query = query.where(audit_log.c.actor == flt.actor)
    if flt.action is not None:
        query = query.where(audit_log.c.action == flt.action)
    if flt.target is not None:
        query = query.where(audit_log.c.target == flt.target)
    if flt.after is not None:
        query = query.where(audit_log.c.at >= flt.after)
    if flt.before is not None:
        query = query.where(audit_log.c.at < flt.before)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    query = query.order_by(audit_log.c.id.desc()).limit(limit + 1)
    return list((await conn.execute(query)).all())
