"""The engine facade: the one set of functions the REST API, the CLI and the loader all call."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from engine.config import EngineConfig
from engine.contracts import schema_problems
from engine.errors import JobInvalid, JobQueueError, WorkerFailed
from engine.http import Executor, TargetPolicy, create_executor
from engine.http.host_limits import HostLimiter, parse_host_limits
from engine.jobs import stats, views
from engine.jobs.feed import EventHub, JobFeed
from engine.jobs.limits import limit_problems
from engine.jobs.submission import build_rows, request_hash
from engine.jobs.validation import InterfaceSchemas, ValidatedJob, validate_job
from engine.masking import mask_view
from engine.metrics import Metrics
from engine.runtime.transitions import log_sweep
from engine.runtime.worker import Worker, announce_interrupts
from engine.schedules.book import ScheduleBook
from engine.schedules.scheduler import Scheduler
from engine.security.access import Access, Actor, audit_creation, audit_entry
from engine.security.keyring import KeyRing
from engine.security.keys import Principal, parse_key_entries
from engine.service_callbacks import CallbackMethods
from engine.signals import CANCEL, EVENTS, READY, LocalSignals, Signals, open_signals
from engine.store import JobFilter, NewJob, Reaped, Store, Submitted, decode_cursor, encode_cursor
from engine.store.audit import AuditFilter
from engine.workflows import WorkflowMethods
from schemas.jobs import JobSpec

T = TypeVar("T")

log = logging.getLogger("jobqueue.engine")


@dataclass(frozen=True, kw_only=True)
class BatchItem:
    """One job of :meth:`Engine.submit_many`."""

    spec: JobSpec
    single_call: bool = False
    idempotency_key: str | None = None
    document: Any = None


@dataclass(frozen=True, kw_only=True)
class SubmitResult:
    job_id: str
    status: str
    existing: bool
    warnings: list[dict[str, Any]]


class Engine(WorkflowMethods, CallbackMethods):
    def __init__(
        self,
        store: Store,
        config: EngineConfig,
        executor: Executor | None,
        signals: Signals | None = None,
    ) -> None:
        self._store = store
        self.config = config
        #: wake-ups, cancels and event nudges between processes (a broker's, or local ones)
        self.signals = signals or LocalSignals()
        if self.signals.remote:
            store.on_ready = lambda: self.signals.publish(READY)
            store.on_events = lambda ids: self.signals.publish(EVENTS, ",".join(sorted(ids)))
        self._executor = executor
        self._webhook_executor: Executor | None = None
        self.metrics = Metrics()
        self._workers: list[Worker] = []
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._schedules = ScheduleBook(
            store, self.validate, self._interrupt, self.prepare_run, self._templates
        )
        env_keys = parse_key_entries(config.api_keys, admin=False)
        env_keys |= parse_key_entries(config.admin_keys, admin=True)
        self._access = Access(
            store, KeyRing(store, env_keys, refresh_seconds=config.key_refresh_seconds)
        )
        self._host_limiter: HostLimiter | None = None
        self._events = EventHub(store, self.signals)

    @classmethod
    async def open(
        cls, config: EngineConfig, *, executor: Executor | None = None, migrate: bool = True
    ) -> Engine:
        signals = open_signals(config.broker_url, config.broker_prefix)
        store = await Store.open(
            config.db_url,
            sqlite_synchronous=config.sqlite_synchronous,
            migrate_schema=migrate,
            write_batch_max=config.write_batch_max,
            secret_keys=config.secret_keys,
            notify_in_db=not signals.remote,
        )
        try:
            await signals.start()
        except BaseException:
            await store.close()
            raise
        return cls(store, config, executor, signals)

    def end_streams(self) -> None:
        """End every open event stream of this process (call it when the server stops, before
        it waits for open connections: a stream otherwise lasts until its job ends)."""
        self._events.end_streams()

    async def close(self) -> None:
        self.end_streams()
        await self.stop_workers()
        await self._events.close()
        if self._executor is not None:
            await self._executor.aclose()
        if self._webhook_executor is not None:
            await self._webhook_executor.aclose()
        await self._store.close()
        await self.signals.close()

    async def rotate_secret(self) -> int:
        """Re-encrypt every stored task's request parts with the first ``JOBQUEUE_SECRET_KEY``
        (plaintext rows get encrypted too); the number of rows rewritten. Safe while workers
        run: a row is rewritten in one statement, and every listed key still decrypts it."""
        return await self._store.rotate_secrets()

    # --- submit / validate ----------------------------------------------------------------
    async def _masters_for(self, spec: JobSpec) -> dict[str, InterfaceSchemas]:
        names = sorted(
            {t.interface for t in spec.tasks if t.interface and t.interface not in spec.interfaces}
        )
        if not names:
            return {}
        rows = await self._store.masters(names)
        return {r.name: InterfaceSchemas(r.input_schema, r.output_schema) for r in rows}

    async def validate(
        self,
        spec: JobSpec,
        *,
        single_call: bool = False,
        scheduled: bool = False,
        params_schema: Any = None,
    ) -> ValidatedJob:
        """Every creation-time check; raises :class:`JobInvalid` with the whole report.
        ``scheduled``: the job is a schedule's, its templates may read ``schedule``;
        ``params_schema`` (a workflow definition's) types the templates' ``params``."""
        limited = limit_problems(spec, self.config.limits, single_call=single_call)
        if limited:
            raise JobInvalid(limited)
        masters = await self._masters_for(spec)
        workflows = await self._definitions_for(spec)
        return validate_job(
            spec,
            masters,
            single_call=single_call,
            scheduled=scheduled,
            params_schema=params_schema,
            workflows=workflows,
        )

    async def submit(
        self,
        spec: JobSpec,
        *,
        single_call: bool = False,
        owner: str = "",
        idempotency_key: str | None = None,
        document: Any = None,
        params_schema: Any = None,
        workflow: dict[str, Any] | None = None,
        by: Actor | None = None,
    ) -> SubmitResult:
        validated = await self.validate(spec, single_call=single_call, params_schema=params_schema)
        digest = request_hash(document) if idempotency_key else None
        rows = build_rows(
            validated,
            single_call=single_call,
            owner=owner,
            idempotency_key=idempotency_key,
            document_hash=digest,
            workflow=workflow,
        )
        audit_creation(rows, by)
        done = await self._write_submission(rows)
        return SubmitResult(
            job_id=done.job_id,
            status=done.status,
            existing=done.existing,
            warnings=[w.to_dict() for w in validated.warnings],
        )

    async def _write_submission(self, rows: NewJob) -> Submitted:
        """Commit the job; an idle worker of this process takes its ready tasks in the same
        transaction (direct dispatch) when it has free slots and no backlog is waiting."""
        worker = next((w for w in self._workers if w.alive and w.takes_any_job), None)
        if worker is None:
            return await self._store.submit(rows)
        return await worker.dispatching(
            rows.due_count(time.time()), lambda dispatch: self._store.submit(rows, dispatch)
        )

    async def submit_many(
        self, items: Sequence[BatchItem], *, owner: str = "", by: Actor | None = None
    ) -> list[SubmitResult | JobQueueError]:
        """Submit several jobs; each is validated and accepted or refused on its own.

        The accepted ones are committed together by the group-commit writer (one transaction
        for a whole batch in the common case). Returns, per item, its result or its error.
        """
        prepared: list[NewJob | JobQueueError] = []
        warnings: list[list[dict[str, Any]]] = []
        for item in items:
            try:
                validated = await self.validate(item.spec, single_call=item.single_call)
            except JobQueueError as exc:
                prepared.append(exc)
                warnings.append([])
                continue
            digest = request_hash(item.document) if item.idempotency_key else None
            rows = build_rows(
                validated,
                single_call=item.single_call,
                owner=owner,
                idempotency_key=item.idempotency_key,
                document_hash=digest,
            )
            audit_creation(rows, by)
            prepared.append(rows)
            warnings.append([w.to_dict() for w in validated.warnings])
        done = await asyncio.gather(
            *(self._store.submit(p) for p in prepared if not isinstance(p, JobQueueError)),
            return_exceptions=True,
        )
        results: list[SubmitResult | JobQueueError] = []
        written = iter(done)
        for p, warned in zip(prepared, warnings, strict=True):
            if isinstance(p, JobQueueError):
                results.append(p)
                continue
            outcome = next(written)
            if isinstance(outcome, JobQueueError):
                results.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                results.append(
                    SubmitResult(
                        job_id=outcome.job_id,
                        status=outcome.status,
                        existing=outcome.existing,
                        warnings=warned,
                    )
                )
        return results

    # --- reads ----------------------------------------------------------------------------
    def mask(self, document: T) -> T:
        """``document`` as it may be shown: every read path (API, events) passes through here
        (:func:`engine.masking.mask_view` with the configured secret header names)."""
        return cast(T, mask_view(document, self.config.secret_header_names))

    async def get_job(self, job_id: str, *, owner: str | None = None) -> dict[str, Any]:
        job, rows = await self._store.job(job_id, owner=owner)
        mapped = any(r.items_total is not None for r in rows)
        running = await self._store.running_instances(job_id) if mapped else {}
        return self.mask(views.job_detail(job, rows, self.config.default_timeout, running))

    async def snapshot(
        self, job_id: str, *, owner: str | None = None
    ) -> tuple[dict[str, Any], int]:
        """The job detail and the id of the job's latest event read before it: the events
        after that id carry every change the detail may not show yet."""
        job, rows, cursor = await self._store.job_with_cursor(job_id, owner=owner)
        return self.mask(views.job_detail(job, rows, self.config.default_timeout)), cursor

    def job_events(
        self, job_id: str, *, after: int | None = None, owner: str | None = None
    ) -> AsyncGenerator[dict[str, Any]]:
        """The job's live events: ``{"type": "snapshot", "job": ...}`` first (unless ``after``,
        a reconnecting reader's last event id, is given), then each task and job change in
        order; it ends after the job's final event. ``NotFound`` comes with the first message."""

        async def snapshot() -> tuple[dict[str, Any], int]:
            return await self.snapshot(job_id, owner=owner)

        return JobFeed(self._store, self._events, job_id, snapshot).messages(after)

    async def get_result(self, job_id: str, *, owner: str | None = None) -> dict[str, Any]:
        job, rows = await self._store.job(job_id, owner=owner, with_results=True)
        return self.mask(views.job_result(job, rows))

    async def get_task(self, job_id: str, task: str, *, owner: str | None = None) -> dict[str, Any]:
        """One task: its request as submitted (secret headers masked), state and response."""
        row, spec = await self._store.task(job_id, task, owner=owner)
        return self.mask(views.task_detail(row, spec, self.config.secret_header_names))

    async def job_stats(self, *, minutes: int = 15, owner: str | None = None) -> dict[str, Any]:
        """Jobs per status, and jobs finished per minute over the last ``minutes``."""
        now = time.time()
        counts, finished = await self._store.job_stats(now - minutes * 60, owner=owner)
        rows = [(r.finished_at, r.status) for r in finished]
        return stats.job_stats(counts, rows, now=now, minutes=minutes)

    async def get_attempts(
        self, job_id: str, task: str, *, owner: str | None = None
    ) -> list[dict[str, Any]]:
        rows = await self._store.attempts(job_id, task, owner=owner)
        return self.mask([views.attempt_view(r) for r in rows])

    async def get_instances(
        self,
        job_id: str,
        task: str,
        *,
        start: int = 0,
        limit: int = 100,
        owner: str | None = None,
    ) -> dict[str, Any]:
        """A page of the instances of a ``for_each`` task, from item ``start`` on."""
        rows = await self._store.instances(job_id, task, start=start, limit=limit, owner=owner)
        more = len(rows) > limit
        rows = rows[:limit]
        return {
            "job_id": job_id,
            "task": task,
            "items": self.mask([views.instance_view(r) for r in rows]),
            "next_start": rows[-1].item_index + 1 if more and rows else None,
        }

    async def get_instance_attempts(
        self, job_id: str, task: str, index: int, *, owner: str | None = None
    ) -> list[dict[str, Any]]:
        rows = await self._store.instance_attempts(job_id, task, index, owner=owner)
        return self.mask([views.attempt_view(r) for r in rows])

    async def get_graph(self, job_id: str, *, owner: str | None = None) -> dict[str, Any]:
        job, rows = await self._store.job(job_id, owner=owner)
        return self.mask({"job_id": job.id, "status": job.status, **views.graph_view(rows)})

    async def list_jobs(
        self, flt: JobFilter, *, limit: int = 50, cursor: str | None = None
    ) -> dict[str, Any]:
        """A page of jobs; ``flt.owner`` limits it to one owner's jobs."""
        position = decode_cursor(cursor) if cursor else None
        rows = await self._store.list_jobs(flt, limit=limit, cursor=position)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
        return {"items": [views.job_list_item(r) for r in rows], "next_cursor": next_cursor}

    # --- control --------------------------------------------------------------------------
    async def cancel(
        self, job_id: str, *, owner: str | None = None, by: Actor | None = None
    ) -> str:
        audit = audit_entry(by, "job.cancel", job_id)
        result = await self._store.cancel(job_id, owner=owner, audit=audit)
        self._interrupt(result.interrupted)
        if result.interrupted:
            self.signals.publish(CANCEL, job_id)
        log.info(
            "job %s canceled; %d running calls interrupted",
            job_id,
            len(result.interrupted),
            extra={"job_id": job_id},
        )
        return result.status

    async def retry(self, job_id: str, *, owner: str | None = None, by: Actor | None = None) -> str:
        audit = audit_entry(by, "job.retry", job_id)
        return await self._store.retry_job(job_id, owner=owner, audit=audit)

    async def delete(
        self, job_id: str, *, owner: str | None = None, by: Actor | None = None
    ) -> None:
        """Delete an ended job with everything stored for it; ``Conflict`` while it runs."""
        audit = audit_entry(by, "job.delete", job_id)
        await self._store.delete_job(job_id, owner=owner, audit=audit)

    # --- interface masters ----------------------------------------------------------------
    def _check_master_schemas(self, fields: dict[str, Any]) -> None:
        problems = []
        for key in ("input_schema", "output_schema"):
            if fields.get(key) is not None:
                problems += schema_problems(fields[key], location=f"/{key}", task=None)
        if problems:
            raise JobInvalid(problems)

    async def create_master(
        self, fields: dict[str, Any], *, by: Actor | None = None
    ) -> dict[str, Any]:
        self._check_master_schemas(fields)
        audit = audit_entry(by, "interface_master.create")
        return views.master_view(await self._store.create_master(fields, audit=audit))

    async def update_master(
        self, key: str, fields: dict[str, Any], *, by: Actor | None = None
    ) -> dict[str, Any]:
        self._check_master_schemas(fields)
        audit = audit_entry(by, "interface_master.update")
        return views.master_view(await self._store.update_master(key, fields, audit=audit))

    async def delete_master(self, key: str, *, by: Actor | None = None) -> None:
        await self._store.delete_master(key, audit=audit_entry(by, "interface_master.delete", key))

    async def list_masters(self) -> list[dict[str, Any]]:
        return [views.master_view(r) for r in await self._store.masters()]

    async def get_master(self, key: str) -> dict[str, Any]:
        return views.master_view(await self._store.master(key))

    # --- schedules --------------------------------------------------------------------------
    async def create_schedule(self, fields: dict[str, Any], *, owner: str = "") -> dict[str, Any]:
        """Create a cron schedule; its job is validated now, with locations under ``/job``.
        The schedule and the jobs it creates belong to ``owner``."""
        return self.mask(await self._schedules.create(fields, owner=owner))

    async def apply_schedule(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create or update the schedule named ``fields["name"]``; true when created."""
        view, created = await self._schedules.apply(fields)
        return self.mask(view), created

    async def update_schedule(
        self, key: str, fields: dict[str, Any], *, owner: str | None = None
    ) -> dict[str, Any]:
        return self.mask(await self._schedules.update(key, fields, owner=owner))

    async def delete_schedule(self, key: str, *, owner: str | None = None) -> None:
        await self._schedules.delete(key, owner=owner)

    async def list_schedules(self, *, owner: str | None = None) -> list[dict[str, Any]]:
        """Schedules, all of them or (``owner``) only that key's."""
        return self.mask(await self._schedules.all(owner=owner))

    async def get_schedule(self, key: str, *, owner: str | None = None) -> dict[str, Any]:
        """A schedule with its next fire times and the last ticks it handled."""
        return self.mask(await self._schedules.get(key, owner=owner))

    async def fire_schedules(self, *, now: float | None = None) -> int:
        """Handle the due ticks once now (the scheduler loop does it in every worker process;
        ``now`` is for tests). Returns how many jobs this call created."""
        fired = await self._schedules.fire_due(time.time() if now is None else now)
        return sum(1 for f in fired if f.outcome == "fired")

    # --- API keys and the audit log (engine.security.access) -------------------------------
    async def authenticate(self, key: str) -> Principal | None:
        """The principal of a bearer key; ``None`` for an unknown or revoked key."""
        return await self._access.keyring.authenticate(key)

    async def auth_enabled(self) -> bool:
        """Whether any API key is configured (environment or database)."""
        return await self._access.keyring.enabled()

    async def create_key(
        self, name: str, *, admin: bool = False, by: Actor | None = None
    ) -> tuple[str, dict[str, Any]]:
        return await self._access.create_key(name, admin=admin, by=by)

    async def revoke_key(self, name: str, *, by: Actor | None = None) -> None:
        await self._access.revoke_key(name, by=by)

    async def list_keys(self, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        return await self._access.list_keys(include_revoked=include_revoked)

    async def audit_log(
        self, flt: AuditFilter, *, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        return await self._access.audit_log(flt, limit=limit, cursor=cursor)

    # --- workers --------------------------------------------------------------------------
    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = self._make_executor(
                max_connections=max(self.config.concurrency, 1),
                max_body_bytes=self.config.result_max_bytes,
            )
        return self._executor

    def host_limiter(self) -> HostLimiter:
        """The per-host caps and pauses every worker of this process shares."""
        if self._host_limiter is None:
            self._host_limiter = HostLimiter(parse_host_limits(self.config.host_limits))
        return self._host_limiter

    def _make_executor(self, *, max_connections: int, max_body_bytes: int) -> Executor:
        """An executor under the configured target policy (tasks and webhooks alike)."""
        return create_executor(
            kind=self.config.http_client,  # type: ignore[arg-type]
            max_connections=max_connections,
            max_body_bytes=max_body_bytes,
            target_policy=TargetPolicy(
                allow_private=self.config.allow_private_networks,
                allowed_hosts=self.config.allowed_hosts,
            ),
        )

    def worker(self, *, only_jobs: frozenset[str] | None = None) -> Worker:
        """A worker of this process; with ``only_jobs``, one that claims only their tasks."""
        scheduler = None
        if only_jobs is None and self.config.scheduler:
            scheduler = Scheduler(self._schedules)
        worker = Worker(
            store=self._store,
            config=self.config,
            executor=self.executor(),
            metrics=self.metrics,
            only_jobs=only_jobs,
            start_child=self._start_child,
            scheduler=scheduler,
            hosts=self.host_limiter(),
            signals=self.signals,
            # a worker of some jobs only (``jobqueue run``) leaves webhooks to the others
            webhooks=self.webhook_sender if only_jobs is None else None,
        )
        self._workers.append(worker)
        return worker

    def start_worker(self, *, only_jobs: frozenset[str] | None = None) -> Worker:
        """Run a worker in the background of this process (the embedded worker)."""
        worker = self.worker(only_jobs=only_jobs)
        self._worker_tasks.append(asyncio.create_task(worker.run(), name="jobqueue-worker"))
        return worker

    async def run_worker(self, *, burst: bool = False) -> None:
        """Run a worker in the foreground; raises :class:`WorkerFailed` if it died."""
        worker = self.worker()
        try:
            await worker.run(burst=burst)
        finally:
            self._workers.remove(worker)
        if worker.failure is not None:
            raise WorkerFailed(worker.failure)

    def health(self) -> dict[str, Any]:
        """Workers of this process that stopped on their own make the process unhealthy."""
        failed = [w.failure for w in self._workers if w.failure is not None]
        health: dict[str, Any] = {"workers": len(self._workers), "failed_workers": failed}
        broker = self.signals.health()
        if broker is not None:  # with a broker: its URL (no password) and its state
            health["broker"] = broker
        return health

    async def ping(self) -> None:
        await self._store.ping()

    async def stop_workers(self) -> None:
        for worker in self._workers:
            worker.stop()
        for task in self._worker_tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._worker_tasks.clear()
        self._workers.clear()

    async def reap(self, *, now: float | None = None) -> Reaped:
        """One reaper sweep now (tests and operators; workers run it every reaper interval):
        lost leases, expired tasks, jobs past their TTL. ``now`` is for tests."""
        reaped = await self._store.reap(max_rescues=self.config.max_rescues, now=now)
        self._interrupt(reaped.interrupted)
        announce_interrupts(self.signals, reaped)
        self.metrics.swept(reaped.transitions)
        log_sweep(reaped.transitions)
        return reaped

    async def metrics_text(self) -> bytes:
        """The Prometheus text exposition of this process, queue gauges read now."""
        depth, oldest_due = await self._store.queue_stats()
        alive = sum(1 for w in self._workers if w.alive)
        waiting = await self._store.waiting_count()
        return self.metrics.scraped(
            depth=depth, oldest_due=oldest_due, workers_alive=alive, waiting=waiting
        )

    def _interrupt(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Interrupt these (task id, attempt) calls wherever they run in this process; workers
        of other processes see the change through their cancel watch (sooner when a broker
        carries the cancel signal)."""
        for worker in self._workers:
            worker.interrupt(pairs)
