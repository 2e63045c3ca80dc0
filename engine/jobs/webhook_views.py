"""Completion webhook rows -> the ``GET /jobs/{id}/webhooks`` document. Pure functions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row

from engine.jobs.views import iso
from engine.masking import mask_headers


def _try_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "attempt": row.attempt,
        "at": iso(row.at),
        "status_code": row.status_code,
        "error": row.error,
        "duration_ms": row.duration_ms,
        "next_attempt_at": iso(row.next_attempt_at),
    }


def deliveries_view(
    job_id: str, deliveries: Sequence[Row[Any]], tries: Sequence[Row[Any]]
) -> dict[str, Any]:
    by_delivery: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in tries:
        by_delivery[row.delivery_id].append(_try_view(row))
    items = []
    for d in deliveries:
        pending = d.status == "pending"
        items.append(
            {
                "delivery_id": d.id,
                "event": d.event,
                "job_status": d.job_status,
                "url": d.url,
                "headers": mask_headers(d.headers or {}),
                "status": d.status,
                "attempts": by_delivery.get(d.id, []),
                "next_attempt_at": iso(d.next_attempt_at) if pending else None,
                "created_at": iso(d.created_at),
                "finished_at": iso(d.finished_at),
            }
        )
    return {"job_id": job_id, "deliveries": items}
