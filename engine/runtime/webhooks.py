"""The completion-webhook sender: a loop beside each worker's claim loop.

It claims due deliveries (a lease, SKIP LOCKED: one worker sends each try), POSTs them through
its own executor (its own connection pool, timeout and SSRF policy, so a slow or dead receiver
never holds a task's slot), and records every try. A non-2xx answer or a network error is
retried with exponential backoff; a blocked target or the last attempt fails the delivery.
Nothing here changes a job. The loop logs what goes wrong, backs off and goes on.

What is signed: ``X-JobQueue-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` with
``JOBQUEUE_WEBHOOK_SECRET``. The body carries ``delivery_id`` and ``timestamp`` (the same value
as ``X-JobQueue-Timestamp``), so both are covered by the signature: a receiver checks the
signature, then rejects a timestamp too far from its clock and a ``delivery_id`` it has seen.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from engine.http import Executor, HttpError, HttpRequest
from engine.runtime.backoff import Backoff
from engine.store import Store
from engine.store.webhooks import DELIVERED, EVENT, FAILED, PENDING, ClaimedDelivery, DeliveryTry

log = logging.getLogger("jobqueue.webhooks")

#: builds a delivery's payload (without its per-try fields) from the ended job's id
PayloadBuilder = Callable[[ClaimedDelivery], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, kw_only=True)
class WebhookSettings:
    secret: bytes | None = None
    timeout: float = 10.0
    concurrency: int = 8
    max_attempts: int = 10
    #: the first retry's wait; each further one doubles it (10 attempts: about a day at 180 s)
    backoff_seconds: float = 180.0
    poll_interval: float = 1.0


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def retry_delay(settings: WebhookSettings, attempt: int) -> float:
    """The wait after try ``attempt`` failed: ``backoff * 2**(attempt-1)``, plus up to 10%."""
    base = settings.backoff_seconds * 2 ** min(attempt - 1, 30)
    return base * (1 + random.random() / 10)


class WebhookSender:
    def __init__(
        self,
        *,
        store: Store,
        executor: Executor,
        build_payload: PayloadBuilder,
        settings: WebhookSettings,
        name: str,
    ) -> None:
        self._store = store
        self._executor = executor
        self._build = build_payload
        self.settings = settings
        self.name = name

    async def run(self) -> None:
        """Deliver until canceled; errors are logged and waited out, never raised."""
        backoff = Backoff(first=self.settings.poll_interval, cap=60.0)
        while True:
            try:
                sent = await self.deliver_due()
            except Exception as exc:
                delay = backoff.next_delay()
                log.warning("delivering webhooks failed (%r); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if not sent:
                await asyncio.sleep(self.settings.poll_interval)

    async def deliver_due(self) -> int:
        """Send every delivery that is due now (one claim's worth); returns how many."""
        due = await self._store.next_delivery_due()
        if due is None or due > time.time():
            return 0
        claimed = await self._store.claim_deliveries(
            worker=self.name,
            limit=self.settings.concurrency,
            lease_seconds=self.settings.timeout * 3 + 30,
        )
        await asyncio.gather(*(self._deliver(d) for d in claimed))
        return len(claimed)

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        try:
            payload = delivery.payload or await self._build(delivery)
            done = await self._send(delivery, payload)
            if not await self._store.record_delivery(done):
                log.warning(
                    "webhook %s try %d: lease lost, not recorded", delivery.id, done.attempt
                )
        except Exception:
            # The lease runs out and the delivery falls due again.
            log.exception("webhook %s of job %s: try failed to run", delivery.id, delivery.job_id)

    def _request(self, delivery: ClaimedDelivery, body: str, now: int) -> HttpRequest:
        headers = {
            **delivery.headers,
            "Content-Type": "application/json",
            "X-JobQueue-Event": EVENT,
            "X-JobQueue-Delivery": delivery.id,
            "X-JobQueue-Timestamp": str(now),
        }
        if self.settings.secret:
            headers["X-JobQueue-Signature"] = sign(self.settings.secret, body.encode())
        return HttpRequest(
            method="POST",
            url=delivery.url,
            headers=headers,
            body=body,
            timeout=self.settings.timeout,
        )

    async def _send(self, delivery: ClaimedDelivery, payload: dict[str, Any]) -> DeliveryTry:
        now = int(time.time())
        body = orjson.dumps(payload | {"delivery_id": delivery.id, "timestamp": now}).decode()
        status_code: int | None = None
        error: dict[str, Any] | None = None
        duration: float | None = None
        permanent = False
        try:
            response = await self._executor.send(self._request(delivery, body, now))
            status_code, duration = response.status_code, response.duration_ms
            if not 200 <= status_code < 300:
                error = {"type": "http_status", "message": f"the receiver answered {status_code}"}
        except HttpError as exc:
            error = {"type": exc.kind, "message": str(exc)}
            permanent = not exc.retryable
        ok = error is None
        last = permanent or delivery.attempt >= self.settings.max_attempts
        status = DELIVERED if ok else (FAILED if last else PENDING)
        after = time.time()
        next_at = (
            after + retry_delay(self.settings, delivery.attempt) if status == PENDING else None
        )
        log.log(
            logging.INFO if ok else logging.WARNING,
            "webhook %s of job %s try %d: %s",
            delivery.id,
            delivery.job_id,
            delivery.attempt,
            status_code if ok else f"{status} ({error['message'] if error else ''})",
            extra={"job_id": delivery.job_id, "delivery_id": delivery.id},
        )
        return DeliveryTry(
            delivery_id=delivery.id,
            job_id=delivery.job_id,
            attempt=delivery.attempt,
            worker=self.name,
            at=after,
            status=status,
            payload=payload,
            status_code=status_code,
            error=error,
            duration_ms=duration,
            next_attempt_at=next_at,
        )
