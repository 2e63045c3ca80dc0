"""Completion webhooks in the database: enqueued in the transaction that ends a job, claimed
with a lease (SKIP LOCKED on PostgreSQL) so one worker sends each try, every try recorded.

A delivery row is ``pending`` until a 2xx answer (``delivered``) or its last attempt
(``failed``). While a worker sends it, ``next_attempt_at`` is the end of that worker's lease:
a worker that dies mid-send lets the delivery fall due again, and a late record is fenced on
(lease owner, attempt).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from ulid import ULID

from engine.store.tables import webhook_attempts, webhook_deliveries
from engine.store.writer import WriteOp

EVENT = "job.finished"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


async def enqueue_webhooks(
    conn: AsyncConnection, ended: Iterable[Row[Any]], status: str, now: float
) -> None:
    """Deliveries for the jobs just ended with ``status`` whose ``on_complete`` wants it
    (rows of ``id, on_complete``)."""
    rows = []
    for job in ended:
        hook = job.on_complete
        if not hook or status not in hook.get("events", ()):
            continue
        rows.append(
            {
                "id": f"wh_{ULID()}",
                "job_id": job.id,
                "event": EVENT,
                "job_status": status,
                "url": hook["url"],
                "headers": hook.get("headers") or {},
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "lease_owner": None,
                "payload": None,
                "created_at": now,
                "finished_at": None,
            }
        )
    if rows:
        await conn.execute(insert(webhook_deliveries), rows)


@dataclass(frozen=True, kw_only=True)
class ClaimedDelivery:
    id: str
    job_id: str
    job_status: str
    url: str
    headers: dict[str, str]
    #: this try's number (1-based)
    attempt: int
    payload: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> ClaimedDelivery:
        return cls(
            id=row.id,
            job_id=row.job_id,
            job_status=row.job_status,
            url=row.url,
            headers=dict(row.headers or {}),
            attempt=row.attempts,
            payload=row.payload,
        )


class ClaimDeliveriesOp(WriteOp[list[ClaimedDelivery]]):
    batchable = False

    def __init__(self, *, worker: str, limit: int, lease_seconds: float) -> None:
        self.worker = worker
        self.limit = limit
        self.lease_seconds = lease_seconds

    async def apply(self, conn: AsyncConnection) -> list[ClaimedDelivery]:
        now = time.time()
        due = (
            select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.status == PENDING,
                webhook_deliveries.c.next_attempt_at <= now,
            )
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(self.limit)
            .with_for_update(skip_locked=True)
            .cte("due_deliveries")
        )
        stmt = (
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.id == due.c.id,
                webhook_deliveries.c.status == PENDING,
                webhook_deliveries.c.next_attempt_at <= now,
            )
            .values(
                attempts=webhook_deliveries.c.attempts + 1,
                lease_owner=self.worker,
                next_attempt_at=now + self.lease_seconds,
            )
            .returning(*webhook_deliveries.c)
        )
        return [ClaimedDelivery.from_row(r) for r in (await conn.execute(stmt)).all()]


@dataclass(frozen=True, kw_only=True)
class DeliveryTry:
    """How one try of a delivery ended, as the sender saw it."""

    delivery_id: str
    job_id: str
    attempt: int
    worker: str
    at: float
    #: the delivery's new status: pending (retry at ``next_attempt_at``), delivered or failed
    status: str
    payload: dict[str, Any]
    status_code: int | None = None
    error: dict[str, Any] | None = None
    duration_ms: float | None = None
    next_attempt_at: float | None = None


class RecordDeliveryOp(WriteOp[bool]):
    """Record one try, fenced on the lease; false when the lease was lost meanwhile."""

    batchable = False

    def __init__(self, done: DeliveryTry) -> None:
        self.done = done

    async def apply(self, conn: AsyncConnection) -> bool:
        d = self.done
        values: dict[str, Any] = {"status": d.status, "lease_owner": None, "payload": d.payload}
        if d.status == PENDING:
            values["next_attempt_at"] = d.next_attempt_at
        else:
            values["finished_at"] = d.at
        result = await conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.id == d.delivery_id,
                webhook_deliveries.c.attempts == d.attempt,
                webhook_deliveries.c.lease_owner == d.worker,
                webhook_deliveries.c.status == PENDING,
            )
            .values(**values)
        )
        if not result.rowcount:
            return False
        await conn.execute(
            insert(webhook_attempts),
            [
                {
                    "delivery_id": d.delivery_id,
                    "job_id": d.job_id,
                    "attempt": d.attempt,
                    "at": d.at,
                    "status_code": d.status_code,
                    "error": d.error,
                    "duration_ms": d.duration_ms,
                    "next_attempt_at": d.next_attempt_at if d.status == PENDING else None,
                }
            ],
        )
        return True


async def next_delivery_due(conn: AsyncConnection) -> float | None:
    return (
        await conn.execute(
            select(func.min(webhook_deliveries.c.next_attempt_at)).where(
                webhook_deliveries.c.status == PENDING
            )
        )
    ).scalar_one_or_none()


async def delivery_rows(
    conn: AsyncConnection, job_id: str
) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
    """A job's deliveries (oldest first) and all their tries."""
    deliveries = (
        await conn.execute(
            select(webhook_deliveries)
            .where(webhook_deliveries.c.job_id == job_id)
            .order_by(webhook_deliveries.c.created_at, webhook_deliveries.c.id)
        )
    ).all()
    tries = (
        await conn.execute(
            select(webhook_attempts)
            .where(webhook_attempts.c.job_id == job_id)
            .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.attempt)
        )
    ).all()
    return deliveries, tries
