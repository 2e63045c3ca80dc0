"""The store's interface: every read and write the engine makes, named for what it does.

Callers never build statements or write ops: a :class:`Store` method does. Writes go through the
group-commit writer (:mod:`engine.store.writer`), reads through the reader engine (on SQLite they
never take the write lock).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy import Row, text
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.errors import Unavailable
from engine.store import callbacks, events, migrate, reads, webhooks
from engine.store.audit import AuditEntry, AuditFilter, audit_rows, audited
from engine.store.callbacks import CallbackTarget, CompleteCallbackOp, RegisterCallbackOp
from engine.store.children import StartChildOp
from engine.store.claims import ClaimOp, Dispatch
from engine.store.defer import DeferOp
from engine.store.dialects import (
    Engines,
    EventsListener,
    FileChangeWatch,
    ReadyListener,
    create_engines,
    server_away,
)
from engine.store.instances import ExpandOp
from engine.store.keys import CreateKeyOp, RevokeKeyOp, key_rows
from engine.store.maintenance import (
    Canceled,
    CancelOp,
    DeleteJobOp,
    Reaped,
    ReapOp,
    RetryJobOp,
)
from engine.store.masters import CreateMasterOp, DeleteMasterOp, UpdateMasterOp, master_row
from engine.store.outcomes import CompleteOp, HandBackOp, HeartbeatOp
from engine.store.reads import JobFilter
from engine.store.records import ClaimedTask, Outcome
from engine.store.schedules import (
    AdvanceScheduleOp,
    CreateScheduleOp,
    DeleteScheduleOp,
    Fired,
    FireOp,
    UpdateScheduleOp,
    due_rows,
    fire_rows,
    next_fire,
    schedule_row,
    schedule_rows,
)
from engine.store.secrets import SEALED_COLUMNS, RotateOp, SecretBox
from engine.store.submit import NewJob, SubmitOp, Submitted
from engine.store.wakeup import JobSignals, Wakeup
from engine.store.webhooks import (
    ClaimDeliveriesOp,
    ClaimedDelivery,
    DeliveryTry,
    RecordDeliveryOp,
)
from engine.store.workflows import (
    DeleteDefinitionOp,
    NewDefinition,
    PutDefinitionOp,
    SavedDefinition,
    definition_row,
    definition_versions,
    latest_definitions,
    uses_graph,
)
from engine.store.writer import BatchWriter, WriteOp

T = TypeVar("T")


def _database_down(exc: Exception) -> bool:
    """What a database that is down, restarting, locked or busy raises through SQLAlchemy and
    its drivers (a refused connection is a bare OSError before SQLAlchemy wraps anything)."""
    if isinstance(exc, DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, OperationalError | InterfaceError)
            or server_away(exc)
        )
    return isinstance(exc, DisconnectionError | OSError | TimeoutError)


class Store:
    """One database: its engines, its group-commit writer and the in-process wake-up."""

    def __init__(
        self,
        engines: Engines,
        *,
        write_batch_max: int = 512,
        secret_keys: Sequence[str] = (),
        notify_in_db: bool = True,
    ) -> None:
        self._engines = engines
        #: encryption at rest of the tasks' request parts (``JOBQUEUE_SECRET_KEY``)
        self.secrets = SecretBox(secret_keys)
        #: set when a commit of this process made tasks ready
        self.wakeup = Wakeup()
        #: set per job when a commit of this process wrote events of that job
        self.job_signals = JobSignals()
        #: also called after such a commit (the engine publishes it to a broker)
        self.on_ready: Callable[[], None] | None = None
        #: also called after a commit that wrote job events, with those jobs' ids (the engine
        #: publishes them to a broker)
        self.on_events: Callable[[set[str]], None] | None = None
        self._writer = BatchWriter(
            engines.writer,
            max_batch=write_batch_max,
            on_wake=self._committed_ready,
            on_events=self._committed_events,
            notify_in_db=notify_in_db,
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        sqlite_synchronous: str = "FULL",
        migrate_schema: bool = True,
        write_batch_max: int = 512,
        secret_keys: Sequence[str] = (),
        notify_in_db: bool = True,
    ) -> Store:
        box = SecretBox(secret_keys)  # a malformed key fails here, before anything opens
        engines = create_engines(url, sqlite_synchronous=sqlite_synchronous)
        if migrate_schema:
            await migrate.upgrade(engines.writer)
        store = cls(engines, write_batch_max=write_batch_max, notify_in_db=notify_in_db)
        store.secrets = box
        store._writer.start()
        return store

    async def close(self) -> None:
        await self._writer.stop()
        await self._engines.dispose()

    # --- cross-process signals --------------------------------------------------------------
    def _committed_ready(self) -> None:
        self.wakeup.notify()
        if self.on_ready is not None:
            self.on_ready()

    def _committed_events(self, job_ids: set[str]) -> None:
        self.job_signals.notify(job_ids)
        if self.on_events is not None:
            self.on_events(job_ids)

    def ready_listener(self, on_ready: Callable[[], None]) -> ReadyListener | None:
        return self._engines.ready_listener(on_ready)

    def change_watch(self) -> FileChangeWatch | None:
        return self._engines.change_watch()

    def events_listener(self, on_jobs: Callable[[list[str]], None]) -> EventsListener | None:
        return self._engines.events_listener(on_jobs)

    # --- the two primitives every method below uses -----------------------------------------
    async def write(self, op: WriteOp[T]) -> T:
        """Apply one write op in the next group commit (tests use it for raw writes too)."""
        try:
            return await self._writer.run(op)
        except Exception as exc:
            if _database_down(exc):
                raise Unavailable(f"the database did not take the write: {exc}") from exc
            raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self._engines.reader.connect() as conn:
                yield conn
        except Exception as exc:
            if _database_down(exc):
                raise Unavailable(f"the database did not answer: {exc}") from exc
            raise

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    # --- jobs -------------------------------------------------------------------------------
    def _seal(self, new: NewJob) -> None:
        """Encrypt a new job's params and its tasks' request parts (with a secret key)."""
        if self.secrets.enabled:
            new.job["params"] = self.secrets.seal_params(new.job.get("params"))
            for row in new.tasks:
                row["spec"] = self.secrets.seal(row["spec"])

    async def submit(self, new: NewJob, dispatch: Dispatch | None = None) -> Submitted:
        """Insert an accepted job (idempotency-checked); with ``dispatch``, its due root tasks
        are inserted already claimed for that worker."""
        self._seal(new)
        op = SubmitOp(new, dispatch)
        try:
            return await self.write(op)
        except IntegrityError:
            if not new.job.get("idempotency_key"):
                raise
            # Another process committed a job with the same Idempotency-Key between our check
            # and our insert (PostgreSQL made us wait for it): check again, now it is visible.
            return await self.write(op)
        finally:
            self._open_dispatched(dispatch)

    def _open_dispatched(self, dispatch: Dispatch | None) -> None:
        """Decrypt what a write claimed for a worker, before the worker starts it."""
        if dispatch is not None and dispatch.claimed:
            dispatch.claimed[:] = [self.secrets.open_task(t) for t in dispatch.claimed]

    async def cancel(
        self, job_id: str, *, owner: str | None = None, audit: AuditEntry | None = None
    ) -> Canceled:
        return await self.write(audited(CancelOp(job_id, owner), audit))

    async def retry_job(
        self, job_id: str, *, owner: str | None = None, audit: AuditEntry | None = None
    ) -> str:
        return await self.write(audited(RetryJobOp(job_id, owner), audit))

    async def delete_job(
        self, job_id: str, *, owner: str | None = None, audit: AuditEntry | None = None
    ) -> None:
        await self.write(audited(DeleteJobOp(job_id, owner), audit))

    async def job(
        self, job_id: str, *, owner: str | None = None, with_results: bool = False
    ) -> tuple[Row[Any], Sequence[Row[Any]]]:
        """The job row and its task rows (``NotFound`` for unknown, expired or others' jobs);
        the instances of ``for_each`` tasks are not among them."""
        async with self.read() as conn:
            job = await reads.job_row(conn, job_id, owner)
            rows = await reads.task_rows(conn, job_id, with_results=with_results)
        return job, rows

    async def instances(
        self, job_id: str, task: str, *, start: int, limit: int, owner: str | None = None
    ) -> Sequence[Any]:
        async with self.read() as conn:
            await reads.job_row(conn, job_id, owner)
            return await reads.instance_rows(conn, job_id, task, start=start, limit=limit)

    async def instance_attempts(
        self, job_id: str, task: str, index: int, *, owner: str | None = None
    ) -> Sequence[Row[Any]]:
        async with self.read() as conn:
            await reads.job_row(conn, job_id, owner)
            return await reads.instance_attempt_rows(conn, job_id, task, index)

    async def job_row(self, job_id: str) -> Row[Any]:
        """The job's own row, without its tasks."""
        async with self.read() as conn:
            return await reads.job_row(conn, job_id)

    async def start_child(self, task: ClaimedTask, child: NewJob) -> bool:
        """Insert a sub-workflow task's child job and let the task wait for it (fenced)."""
        self._seal(child)
        return await self.write(StartChildOp(task, child))

    async def running_instances(self, job_id: str) -> dict[int, int]:
        async with self.read() as conn:
            return await reads.running_instances(conn, job_id)

    async def job_with_cursor(
        self, job_id: str, *, owner: str | None = None
    ) -> tuple[Row[Any], Sequence[Row[Any]], int]:
        """The job and its task rows, with the id of the job's latest event read *before*
        them: events after that id may repeat what the rows show, never miss a change."""
        async with self.read() as conn:
            cursor = await events.last_event_id(conn, job_id)
            job = await reads.job_row(conn, job_id, owner)
            rows = await reads.task_rows(conn, job_id)
        return job, rows, cursor

    async def job_events(self, job_id: str, *, after: int, limit: int) -> Sequence[Row[Any]]:
        """Up to ``limit`` events of the job with an id above ``after``, oldest first."""
        async with self.read() as conn:
            return await events.events_after(conn, job_id, after, limit)

    async def events_behind(self, job_id: str, after: int) -> int:
        async with self.read() as conn:
            return await events.events_behind(conn, job_id, after)

    async def attempts(
        self, job_id: str, task: str, *, owner: str | None = None
    ) -> Sequence[Row[Any]]:
        async with self.read() as conn:
            await reads.job_row(conn, job_id, owner)
            return await reads.attempt_rows(conn, job_id, task)

    async def task(
        self, job_id: str, task: str, *, owner: str | None = None
    ) -> tuple[Row[Any], dict[str, Any]]:
        """One task's row, and its spec with the request parts decrypted (left sealed when no
        configured key opens them)."""
        async with self.read() as conn:
            await reads.job_row(conn, job_id, owner)
            row = await reads.task_row(conn, job_id, task)
        try:
            return row, self.secrets.open(row.spec)
        except ValueError:
            return row, row.spec

    async def job_stats(
        self, since: float, *, owner: str | None = None
    ) -> tuple[dict[str, int], Sequence[Row[Any]]]:
        """Jobs per status, and (finished_at, status) of the jobs that ended since ``since``."""
        async with self.read() as conn:
            counts = await reads.job_counts(conn, owner)
            finished = await reads.finished_since(conn, since, owner)
        return counts, finished

    async def list_jobs(
        self, flt: JobFilter, *, limit: int, cursor: tuple[float, str] | None
    ) -> list[Row[Any]]:
        async with self.read() as conn:
            return await reads.list_job_rows(conn, flt, limit=limit, cursor=cursor)

    # --- workers ----------------------------------------------------------------------------
    async def claim(
        self,
        *,
        worker: str,
        limit: int,
        lease_seconds: float,
        job_ids: Sequence[str] | None = None,
    ) -> list[ClaimedTask]:
        """Up to ``limit`` due tasks, leased to ``worker``; only of ``job_ids`` when given."""
        only = list(job_ids) if job_ids is not None else None
        claimed = await self.write(
            ClaimOp(worker=worker, limit=limit, lease_seconds=lease_seconds, job_ids=only)
        )
        return [self.secrets.open_task(t) for t in claimed]

    async def complete(self, outcome: Outcome, dispatch: Dispatch | None = None) -> bool:
        """Record how an attempt ended and settle its job, in one transaction; false when the
        fence refused it (the task no longer runs that attempt). With ``dispatch``, the tasks it
        made ready are claimed for that worker (``dispatch.claimed``)."""
        try:
            return await self.write(CompleteOp(outcome, dispatch))
        finally:
            self._open_dispatched(dispatch)

    async def defer(self, outcome: Outcome) -> bool:
        """Give a claimed task back unsent, until ``outcome.next_attempt_at``, spending no
        attempt (a host paused or at its cap); false when the fence refused it."""
        return await self.write(DeferOp(outcome))

    async def expand(
        self, parent: ClaimedTask, items: Sequence[Any], start: int, total: int
    ) -> bool:
        """Write one chunk of a for_each task's instances (fenced on its attempt)."""
        seal = self.secrets.seal if self.secrets.enabled else None
        return await self.write(ExpandOp(parent, items, start, total, seal=seal))

    async def heartbeat(self, *, worker: str, task_ids: list[int], lease_seconds: float) -> int:
        return await self.write(
            HeartbeatOp(worker=worker, task_ids=task_ids, lease_seconds=lease_seconds)
        )

    async def hand_back(self, running: list[tuple[int, int]]) -> int:
        """Put these (task id, attempt) pairs back to queued without spending an attempt."""
        return await self.write(HandBackOp(running))

    async def rotate_secrets(self) -> int:
        """Re-encrypt every stored task's request parts with the first key, a page per
        transaction; returns how many rows were rewritten."""
        rewritten = 0
        for where in range(len(SEALED_COLUMNS)):
            after = None
            while True:
                count, last = await self.write(RotateOp(self.secrets, where, after=after))
                if last is None:
                    break
                rewritten, after = rewritten + count, last
        return rewritten

    async def reap(self, *, max_rescues: int, now: float | None = None) -> Reaped:
        return await self.write(ReapOp(max_rescues=max_rescues, now=now))

    async def render_inputs(
        self, job_id: str, upstream: Sequence[str]
    ) -> tuple[Any, dict[str, dict[str, Any]]]:
        async with self.read() as conn:
            job, outputs = await reads.render_inputs(conn, job_id, upstream)
        if self.secrets.enabled or job.params:
            params = self.secrets.open_params(job.params)
            if params is not job.params:
                job = SimpleNamespace(**{**job._mapping, "params": params})
        return job, outputs

    async def running_states(self, task_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
        async with self.read() as conn:
            return await reads.running_states(conn, task_ids)

    async def queue_stats(self) -> tuple[int, float | None]:
        """(tasks queued and due now, the earliest due time among them)."""
        async with self.read() as conn:
            return await reads.queue_stats(conn, time.time())

    async def next_due(self, job_ids: Sequence[str] | None = None) -> float | None:
        async with self.read() as conn:
            return await reads.next_due(conn, job_ids)

    # --- interface masters ------------------------------------------------------------------
    async def create_master(
        self, fields: dict[str, Any], *, audit: AuditEntry | None = None
    ) -> Row[Any]:
        return await self.write(audited(CreateMasterOp(fields), audit, _row_id))

    async def update_master(
        self, key: str, fields: dict[str, Any], *, audit: AuditEntry | None = None
    ) -> Row[Any]:
        return await self.write(audited(UpdateMasterOp(key, fields), audit, _row_id))

    async def delete_master(self, key: str, *, audit: AuditEntry | None = None) -> None:
        await self.write(audited(DeleteMasterOp(key), audit))

    async def masters(self, names: Sequence[str] | None = None) -> list[Row[Any]]:
        async with self.read() as conn:
            return await reads.master_rows(conn, names)

    async def master(self, key: str) -> Row[Any]:
        async with self.read() as conn:
            return await master_row(conn, key)

    # --- workflow definitions ---------------------------------------------------------------
    async def put_definition(self, new: NewDefinition) -> SavedDefinition:
        return await self.write(PutDefinitionOp(new))

    async def delete_definition(self, name: str) -> None:
        await self.write(DeleteDefinitionOp(name))

    async def definition(self, name: str, version: int | None = None) -> Row[Any]:
        """One version of a definition (the latest when ``version`` is None); ``NotFound``."""
        async with self.read() as conn:
            return await definition_row(conn, name, version)

    async def definition_versions(self, name: str) -> list[Row[Any]]:
        async with self.read() as conn:
            return await definition_versions(conn, name)

    async def definitions(self) -> list[Row[Any]]:
        """The latest version of every definition, by name."""
        async with self.read() as conn:
            return await latest_definitions(conn)

    async def definition_uses(self) -> dict[str, list[str]]:
        async with self.read() as conn:
            return await uses_graph(conn)

    # --- schedules --------------------------------------------------------------------------
    async def create_schedule(self, fields: dict[str, Any]) -> Row[Any]:
        return await self.write(CreateScheduleOp(fields))

    async def update_schedule(
        self, key: str, fields: dict[str, Any], *, owner: str | None = None
    ) -> Row[Any]:
        return await self.write(UpdateScheduleOp(key, fields, owner))

    async def delete_schedule(self, key: str, *, owner: str | None = None) -> None:
        await self.write(DeleteScheduleOp(key, owner))

    async def schedule(self, key: str, *, owner: str | None = None) -> Row[Any]:
        async with self.read() as conn:
            return await schedule_row(conn, key, owner)

    async def schedules(self, *, owner: str | None = None) -> list[Row[Any]]:
        async with self.read() as conn:
            return await schedule_rows(conn, owner)

    async def schedule_fires(self, schedule_id: str, *, limit: int) -> list[Row[Any]]:
        """The last ticks handled for a schedule, newest first."""
        async with self.read() as conn:
            return await fire_rows(conn, schedule_id, limit)

    async def due_schedules(self, now: float, *, limit: int) -> list[Row[Any]]:
        async with self.read() as conn:
            return await due_rows(conn, now, limit)

    async def next_schedule_fire(self) -> float | None:
        async with self.read() as conn:
            return await next_fire(conn)

    async def advance_schedule(self, schedule_id: str, next_fire_at: float) -> None:
        """Move a schedule's next tick forward to ``next_fire_at`` (never back)."""
        await self.write(AdvanceScheduleOp(schedule_id, next_fire_at))

    async def fire(
        self,
        *,
        schedule_id: str,
        fire_time: float,
        next_fire_at: float,
        new: NewJob | None,
        overlap: str,
        detail: str | None = None,
    ) -> Fired:
        """Handle one tick: create its job (``new``; ``None`` records the tick as failed with
        ``detail``) unless another process did, and move the schedule's next tick on. See
        :class:`~engine.store.schedules.FireOp`."""
        op = FireOp(
            schedule_id=schedule_id,
            fire_time=fire_time,
            next_fire_at=next_fire_at,
            new=new,
            overlap=overlap,
            detail=detail,
        )
        return await self.write(op)

    # --- API keys and the audit log ----------------------------------------------------------
    async def create_key(
        self, *, name: str, key_hash: str, prefix: str, admin: bool, audit: AuditEntry | None
    ) -> Row[Any]:
        op = CreateKeyOp(name=name, key_hash=key_hash, prefix=prefix, admin=admin)
        return await self.write(audited(op, audit))

    async def revoke_key(self, name: str, *, audit: AuditEntry | None = None) -> Row[Any]:
        return await self.write(audited(RevokeKeyOp(name), audit))

    async def keys(self, *, active_only: bool = False) -> list[Row[Any]]:
        async with self.read() as conn:
            return await key_rows(conn, active_only=active_only)

    async def audit_entries(
        self, flt: AuditFilter, *, limit: int, before_id: int | None
    ) -> list[Row[Any]]:
        async with self.read() as conn:
            return await audit_rows(conn, flt, limit=limit, before_id=before_id)

    # --- callback tasks ---------------------------------------------------------------------
    async def register_callback(self, *, token: str, task: ClaimedTask, timeout: float) -> None:
        """Store a new token's hash for this attempt, before its request is sent."""
        await self.write(
            RegisterCallbackOp(
                digest=callbacks.token_hash(token),
                task_id=task.id,
                job_id=task.job_id,
                attempt=task.attempt,
                timeout=timeout,
            )
        )

    async def callback_target(self, token: str) -> CallbackTarget:
        """The task a live token belongs to (``NotFound``, ``Conflict`` otherwise)."""
        async with self.read() as conn:
            return await callbacks.callback_target(conn, callbacks.token_hash(token))

    async def complete_callback(self, token: str, outcome: Outcome) -> None:
        """Use the token once and record ``outcome``; ``Conflict`` if it was used meanwhile."""
        await self.write(CompleteCallbackOp(callbacks.token_hash(token), outcome))

    async def waiting_count(self) -> int:
        async with self.read() as conn:
            return await callbacks.waiting_count(conn)

    # --- completion webhooks ----------------------------------------------------------------
    async def next_delivery_due(self) -> float | None:
        async with self.read() as conn:
            return await webhooks.next_delivery_due(conn)

    async def claim_deliveries(
        self, *, worker: str, limit: int, lease_seconds: float
    ) -> list[ClaimedDelivery]:
        return await self.write(
            ClaimDeliveriesOp(worker=worker, limit=limit, lease_seconds=lease_seconds)
        )

    async def record_delivery(self, done: DeliveryTry) -> bool:
        return await self.write(RecordDeliveryOp(done))

    async def deliveries(
        self, job_id: str, *, owner: str | None = None
    ) -> tuple[Sequence[Row[Any]], Sequence[Row[Any]]]:
        async with self.read() as conn:
            await reads.job_row(conn, job_id, owner)
            return await webhooks.delivery_rows(conn, job_id)


def _row_id(row: Row[Any]) -> str:
    return str(row.id)
