"""The Engine's functions for callback tasks and completion webhooks (mixed into
:class:`engine.service.Engine`): the REST API, the CLI and the workers call these."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from engine.jobs.views import iso, workflow_ref
from engine.jobs.webhook_views import deliveries_view
from engine.runtime.callbacks import judge_callback
from engine.runtime.transitions import log_transition
from engine.runtime.webhooks import WebhookSender, WebhookSettings
from engine.states import TaskStatus
from engine.store.webhooks import ClaimedDelivery

if TYPE_CHECKING:
    from engine.config import EngineConfig
    from engine.http import Executor
    from engine.metrics import Metrics
    from engine.store import Store

log = logging.getLogger("jobqueue.engine")


class CallbackMethods:
    _store: Store
    config: EngineConfig
    metrics: Metrics
    _webhook_executor: Executor | None

    async def get_result(self, job_id: str, *, owner: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def mask(self, document: Any) -> Any:
        raise NotImplementedError

    def _make_executor(self, *, max_connections: int, max_body_bytes: int) -> Executor:
        raise NotImplementedError

    async def complete_callback(
        self,
        token: str,
        *,
        status: str,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Finish the task waiting for ``token`` (single use): ``NotFound`` for an unknown
        token, ``Conflict`` for a used one, a canceled job's or a timed-out attempt's."""
        target = await self._store.callback_target(token)
        outcome = judge_callback(target, status=status, output=output, error=error)
        await self._store.complete_callback(token, outcome)
        self.metrics.tasks_finished.labels(outcome.status.value).inc()
        self.metrics.attempts.labels(outcome.attempt_status.value).inc()
        log_transition(
            target.job_id,
            target.task,
            target.attempt,
            TaskStatus.WAITING,
            outcome.status,
            error_type=(outcome.error or {}).get("type"),
        )
        answer: dict[str, Any] = {
            "job_id": target.job_id,
            "task": target.task,
            "status": outcome.status.value,
        }
        if outcome.error is not None:
            answer["error"] = outcome.error
        return answer

    async def get_webhooks(self, job_id: str, *, owner: str | None = None) -> dict[str, Any]:
        """The job's completion webhook deliveries, each with every try."""
        deliveries, tries = await self._store.deliveries(job_id, owner=owner)
        return self.mask(deliveries_view(job_id, deliveries, tries))

    def webhook_sender(self, name: str) -> WebhookSender:
        """A sender of completion webhooks with its own executor (pool, timeout), under the
        same target policy as tasks."""
        cfg = self.config
        if self._webhook_executor is None:
            self._webhook_executor = self._make_executor(
                max_connections=max(cfg.webhook_concurrency, 1), max_body_bytes=65_536
            )
        settings = WebhookSettings(
            secret=cfg.webhook_secret.encode() if cfg.webhook_secret else None,
            timeout=cfg.webhook_timeout,
            concurrency=cfg.webhook_concurrency,
            max_attempts=cfg.webhook_max_attempts,
            backoff_seconds=cfg.webhook_backoff_seconds,
            poll_interval=cfg.webhook_poll_interval,
        )
        return WebhookSender(
            store=self._store,
            executor=self._webhook_executor,
            build_payload=self._webhook_payload,
            settings=settings,
            name=name,
        )

    async def deliver_webhooks(self) -> int:
        """Send the webhook deliveries due now, once (tests and operators; workers run this
        in a loop); returns how many tries were made."""
        return await self.webhook_sender("jobqueue-deliver").deliver_due()

    async def _webhook_payload(self, delivery: ClaimedDelivery) -> dict[str, Any]:
        result = await self.get_result(delivery.job_id)
        row, _ = await self._store.job(delivery.job_id)
        return {
            "event": "job.finished",
            "job_id": delivery.job_id,
            "name": row.name,
            "status": delivery.job_status,
            "workflow": workflow_ref(row),
            "finished_at": iso(row.finished_at),
            "result": result,
        }
