"""The worker: claims ready tasks, runs their calls concurrently, records how they ended.

One class with named asyncio tasks: the claim loop (the main body), the heartbeat that renews
leases, the watcher that interrupts calls canceled from another process, the reaper, and the
wake-up sources of other processes' commits. If a helper task dies the worker stops rather than
limp on, and says why in :attr:`Worker.failure`. ``run(burst=True)`` returns once nothing is
queued or running, so a test can run a worker to completion instead of polling for it.

A database that goes away (restarted, locked, unreachable) stops nothing: every loop logs the
error, backs off and carries on, and an outcome that could not be recorded is recorded again
until it is (the attempt fence makes a repeat harmless). Only an error that is not of that kind
(a bug) stops the worker, and then :attr:`Worker.failure` says so to ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ulid import ULID

from engine.config import EngineConfig
from engine.http import Executor
from engine.http.host_limits import HostLimiter, parse_host_limits
from engine.masking import STORED_SECRET_HEADERS
from engine.metrics import MeteredExecutor, Metrics
from engine.runtime.attempt import (
    AttemptSettings,
    CallbackHandle,
    ContextLoader,
    failed,
    run_attempt,
)
from engine.runtime.backoff import Backoff, is_transient
from engine.runtime.callbacks import callback_url, new_token
from engine.runtime.expand import expand_task
from engine.runtime.render_cache import RenderCache
from engine.runtime.slots import Slots
from engine.runtime.transitions import log_sweep, log_transition
from engine.runtime.webhooks import WebhookSender
from engine.signals import CANCEL, DOWN, READY, RESUMED, LocalSignals, Signals
from engine.states import TaskStatus
from engine.store import ClaimedTask, Dispatch, Outcome, Reaped, Store
from engine.store.dialects import FileChangeWatch, ReadyListener
from engine.templates import SandboxEnvironment

if TYPE_CHECKING:
    from engine.schedules.scheduler import Scheduler

log = logging.getLogger("jobqueue.worker")
T = TypeVar("T")
#: (a sub-workflow task, its render-input loader) -> the outcome that ends it at once, or None
#: once its child job is started
StartChild = Callable[[ClaimedTask, ContextLoader], Awaitable[Outcome | None]]


class Worker:
    def __init__(
        self,
        *,
        store: Store,
        config: EngineConfig,
        executor: Executor,
        metrics: Metrics,
        only_jobs: frozenset[str] | None = None,
        start_child: StartChild | None = None,
        scheduler: Scheduler | None = None,
        hosts: HostLimiter | None = None,
        signals: Signals | None = None,
        webhooks: Callable[[str], WebhookSender] | None = None,
    ) -> None:
        self._store = store
        #: starts the child job of a sub-workflow task (the engine validates and builds it)
        self._start_child = start_child
        #: the scheduler loop that runs beside the claim loop (not in burst mode)
        self._scheduler = scheduler
        #: with a broker, wake-ups and cancels from other processes arrive here
        self._signals = signals or LocalSignals()
        #: claim tasks of these jobs only (``jobqueue run --db``: its own job), else any
        self._only_jobs = sorted(only_jobs) if only_jobs is not None else None
        self.config = config
        self.executor = MeteredExecutor(executor, metrics)
        self._metrics = metrics
        self.name = f"{socket.gethostname()}:{os.getpid()}:{str(ULID())[-6:]}"
        self.settings = AttemptSettings(
            default_timeout=config.default_timeout,
            secret_headers=STORED_SECRET_HEADERS | config.secret_header_names,
            templates=SandboxEnvironment(
                max_output_bytes=config.max_template_output_bytes,
                max_render_seconds=config.max_template_render_seconds,
            ),
            hosts=hosts or HostLimiter(parse_host_limits(config.host_limits)),
        )
        self._stop = asyncio.Event()
        #: every claimed task not yet recorded: (attempt, runner), for leases, cancels, drain
        self._running: dict[int, tuple[int, asyncio.Task[None]]] = {}
        #: the job of each running task (a cancel signal names a job)
        self._job_of: dict[int, str] = {}
        #: set to check the running calls against the database now (a cancel signal came)
        self._check_cancels = asyncio.Event()
        self._slots = Slots(config.concurrency)
        #: set when a slot frees up, for a claim loop waiting for one
        self._idle = asyncio.Event()
        self._idle.set()
        #: while calls run, claim only once this many slots are free (fewer, larger claims)
        self._claim_batch = max(1, config.concurrency // 4)
        #: the last claim found fewer due tasks than it could take: no backlog waits, so a new
        #: job may go straight to this worker without jumping the queue
        self._drained = False
        #: the claim loop woke while all free slots were promised, and so claimed nothing
        self._missed_wake = False
        #: why the worker stopped on its own (a helper task died), else None
        self.failure: str | None = None
        self._cache = RenderCache()
        #: delivers completion webhooks beside the claim loop (not in burst runs)
        self._webhooks = webhooks(self.name) if webhooks is not None else None

    # --- control -------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop claiming; :meth:`run` then drains the running calls (SIGTERM handler)."""
        self._stop.set()
        self._store.wakeup.notify()

    def interrupt(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Cancel the running calls of these (task id, attempt) pairs, if they run here."""
        for task_id, attempt in pairs:
            entry = self._running.get(task_id)
            if entry is not None and entry[0] == attempt:
                entry[1].cancel()

    @property
    def takes_any_job(self) -> bool:
        """Not restricted to some jobs: new jobs may be dispatched to it directly."""
        return self._only_jobs is None

    @property
    def alive(self) -> bool:
        """False once the worker stopped (asked to, or because a helper task died)."""
        return not self._stop.is_set()

    async def dispatching(
        self,
        wanted: int,
        write: Callable[[Dispatch | None], Awaitable[T]],
        *,
        on_none: Callable[[], None] | None = None,
    ) -> T:
        """Run ``write`` with a :class:`Dispatch` for up to ``wanted`` of this worker's free
        slots (direct dispatch), then start whatever it claimed for us.

        Slots are promised only while no backlog waits (a new job must not jump the queue);
        with none promised, ``on_none`` runs and ``write`` gets no dispatch.
        """
        promised = 0
        if self.alive and self._drained and wanted > 0:
            promised = self._slots.reserve(wanted)
        if not promised:
            if on_none is not None:
                on_none()
            return await write(None)
        dispatch = Dispatch(
            worker=self.name, limit=promised, lease_seconds=self.config.lease_seconds
        )
        try:
            return await write(dispatch)
        finally:
            self._slots.release(promised)
            for task in dispatch.claimed:
                self._start(task)
            if self._missed_wake and not self._slots.promised:
                # A wake-up came while every free slot was promised: look at the queue now.
                self._missed_wake = False
                self._store.wakeup.notify()

    # --- main loop -----------------------------------------------------------------------
    async def run(self, *, burst: bool = False) -> None:
        helpers = [
            asyncio.create_task(self._heartbeat(), name="jobqueue-heartbeat"),
            asyncio.create_task(self._cancel_watch(), name="jobqueue-cancel-watch"),
        ]
        if not burst:
            helpers.append(asyncio.create_task(self._reaper(), name="jobqueue-reaper"))
            if self._webhooks is not None:
                helpers.append(asyncio.create_task(self._webhooks.run(), name="jobqueue-webhooks"))
        if not burst and self._scheduler is not None:
            helpers.append(
                asyncio.create_task(self._scheduler.run(self._stop), name="jobqueue-scheduler")
            )
        if self._signals.remote:
            # The broker carries other processes' wake-ups instead of the database.
            helpers.append(
                asyncio.create_task(self._follow_signals(), name="jobqueue-follow-signals")
            )
        wakeup = self._store.wakeup.notify
        listener = None if self._signals.remote else self._store.ready_listener(wakeup)
        if listener is not None:
            helpers.append(asyncio.create_task(self._listen(listener), name="jobqueue-listen"))
        watch = None if self._signals.remote else self._store.change_watch()
        if watch is not None and self.config.change_check_interval > 0:
            helpers.append(
                asyncio.create_task(self._watch_commits(watch), name="jobqueue-commit-watch")
            )
        monitor = asyncio.create_task(self._monitor(helpers), name="jobqueue-monitor")
        try:
            try:
                await self._claim_loop(burst)
            except Exception as exc:
                self._fail("claim loop", exc)
            # Leases keep being renewed and cancels keep being seen while calls drain.
            await self._drain()
        finally:
            monitor.cancel()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(monitor, *helpers, return_exceptions=True)

    async def _monitor(self, helpers: list[asyncio.Task[None]]) -> None:
        done, _ = await asyncio.wait(helpers, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exc = None if task.cancelled() else task.exception()
            if isinstance(exc, Exception):
                self._fail(task.get_name(), exc)
        self.stop()

    def _fail(self, where: str, exc: Exception) -> None:
        """The worker cannot go on: say why (``/healthz``, the exit code) and stop claiming."""
        self.failure = f"{where}: {exc!r}"
        log.error("worker %s stops: %s", self.name, self.failure, exc_info=exc)
        self.stop()

    async def _survive(self, what: str, exc: Exception, backoff: Backoff) -> None:
        """A transient error in a loop: log it (the first of a streak as a warning), wait the
        next backoff delay (cut short by a stop), and let the loop go on. Anything else is
        re-raised: it stops the worker."""
        if not is_transient(exc):
            raise exc
        level = logging.WARNING if backoff.failures == 0 else logging.DEBUG
        delay = backoff.next_delay()
        log.log(level, "%s failed (%s); retrying in %.1f s", what, exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)

    async def _claim_loop(self, burst: bool) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                if await self._claim_once(burst):
                    return
            except Exception as exc:
                await self._survive("claiming tasks", exc, backoff)
                continue
            if backoff.failures:
                log.warning("claiming tasks works again")
                backoff.reset()

    async def _claim_once(self, burst: bool) -> bool:
        """One turn of the claim loop; true when a burst run is done."""
        free = self._slots.free()
        claimed: list[ClaimedTask] = []
        if free <= 0 and self._slots.promised:
            self._missed_wake = True
        if 0 < free < self._claim_batch and self._slots.busy:
            # Busy: let a few slots free up so one claim statement serves several tasks.
            await self._wait_for_slot(self._claim_batch)
            return False
        if free > 0:
            claimed = await self._store.claim(
                worker=self.name,
                limit=free,
                lease_seconds=self.config.lease_seconds,
                job_ids=self._only_jobs,
            )
            self._drained = len(claimed) < free
            for task in claimed:
                self._start(task)
        if claimed and len(claimed) == free:
            await self._wait_for_slot(1)
            return False
        if burst and not self._running and not claimed and await self._nothing_queued():
            return True
        await self._store.wakeup.wait(await self._sleep_time(len(claimed)))
        return False

    async def _wait_for_slot(self, wanted: int) -> None:
        """Until ``wanted`` slots are free, or a wake-up / the poll interval says look again."""
        while self._slots.free() < wanted and not self._stop.is_set():
            self._idle.clear()
            try:
                await asyncio.wait_for(self._idle.wait(), self.config.poll_interval)
            except TimeoutError:
                return

    async def _sleep_time(self, claimed: int) -> float:
        if claimed or self._slots.free() <= 0:
            return self.config.poll_interval
        due = await self._store.next_due(self._only_jobs)
        if due is None:
            return self.config.poll_interval
        return min(self.config.poll_interval, max(due - time.time(), 0.0))

    async def _nothing_queued(self) -> bool:
        return await self._store.next_due(self._only_jobs) is None

    # --- one task ------------------------------------------------------------------------
    def _start(self, task: ClaimedTask) -> None:
        stale = self._running.get(task.id)
        if stale is not None:
            # Its lease was lost while this worker still ran the call, and the task came back
            # here as a newer attempt: the old call is stale (its outcome would be refused).
            log.warning(
                "job %s task %s attempt %d: interrupting attempt %d, still running here",
                task.job_id,
                task.name,
                task.attempt,
                stale[0],
            )
            stale[1].cancel()
        runner = asyncio.create_task(self._execute(task), name=f"jobqueue-task-{task.id}")
        self._running[task.id] = (task.attempt, runner)
        self._job_of[task.id] = task.job_id
        self._slots.take(task.id)
        log_transition(task.job_id, task.name, task.attempt, TaskStatus.QUEUED, TaskStatus.RUNNING)

    def _current(self, task: ClaimedTask) -> bool:
        """This attempt is the one this worker runs for its task (not replaced by a newer one,
        whose entry and slot a stale runner must leave alone)."""
        entry = self._running.get(task.id)
        return entry is not None and entry[0] == task.attempt

    def _free_slot(self, task_id: int, *, wake: bool = True) -> None:
        if self._slots.give_back(task_id) and wake:
            self._wake_claims()

    def _wake_claims(self) -> None:
        self._idle.set()
        self._store.wakeup.notify()

    async def _execute(self, task: ClaimedTask) -> None:
        try:
            if task.spec.workflow is not None and task.spec.for_each is None:
                started = await self._run_child(task)
                if started is None:
                    return
                outcome = started
            elif task.spec.for_each is not None:
                expanded = await expand_task(
                    task,
                    self._load_context,
                    self.settings.templates,
                    self._store,
                    self.config.max_map_items,
                )
                if expanded is None:
                    return
                outcome = expanded
            else:
                callback = await self._callback_for(task)
                outcome = await run_attempt(
                    task, self.executor, self._load_context, self.settings, callback
                )
            if self._current(task):
                self._free_slot(task.id, wake=False)  # _record decides who gets the slot
            await self._record_until_done(task, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "job %s task %s attempt %d crashed; its lease will expire and the reaper "
                "will queue it again",
                task.job_id,
                task.name,
                task.attempt,
            )
        finally:
            if self._current(task):
                self._running.pop(task.id, None)
                self._job_of.pop(task.id, None)
                self._free_slot(task.id)

    async def _run_child(self, task: ClaimedTask) -> Outcome | None:
        if self._start_child is None:
            error = {"type": "subworkflow", "message": "this worker cannot start sub-workflows"}
            return failed(task, error)
        return await self._start_child(task, self._load_context)

    async def _callback_for(self, task: ClaimedTask) -> CallbackHandle | None:
        """A callback task's new token, stored before its request goes out (so that a callback
        that comes back at once finds it)."""
        timeout = task.spec.callback_timeout_sec
        if timeout is None:
            return None
        token = new_token()
        await self._store.register_callback(token=token, task=task, timeout=timeout)
        return CallbackHandle(url=callback_url(self.config.public_url, token), token=token)

    async def _record_until_done(self, task: ClaimedTask, outcome: Outcome) -> None:
        """Record the outcome, again and again while the database is unavailable (the task
        keeps its lease meanwhile). A worker told to stop gives up: the lease then expires
        and the task runs again, as after a crash."""
        backoff = Backoff()
        while True:
            try:
                await self._record(task, outcome)
                return
            except Exception as exc:
                if self._stop.is_set():
                    raise
                await self._survive(f"recording job {task.job_id} task {task.name}", exc, backoff)

    async def _record(self, task: ClaimedTask, outcome: Outcome) -> None:
        """Record the outcome. When it can make downstream tasks ready and this worker has
        no backlog, the same transaction claims them for it (no claim round trip per hop)."""
        if outcome.deferred:  # nothing was sent: the claim is undone, no attempt spent
            if await self._store.defer(outcome):
                log_transition(
                    task.job_id,
                    task.name,
                    task.attempt,
                    TaskStatus.RUNNING,
                    TaskStatus.QUEUED,
                    error_type="host_busy",
                )
            return
        final = outcome.status is not TaskStatus.QUEUED
        wanted = self._slots.free() if final and not outcome.solo else 0
        applied = await self.dispatching(
            wanted, lambda d: self._store.complete(outcome, d), on_none=self._wake_claims
        )
        if not applied:
            log.warning(
                "job %s task %s attempt %d: outcome %s refused, the task no longer runs this "
                "attempt (canceled, expired, its lease lost or its callback came first)",
                task.job_id,
                task.name,
                task.attempt,
                outcome.status.value,
            )
            return
        self._metrics.recorded(outcome)
        log_transition(
            task.job_id,
            task.name,
            task.attempt,
            TaskStatus.RUNNING,
            outcome.status,
            duration_ms=outcome.duration_ms,
            error_type=(outcome.error or {}).get("type"),
        )
        if outcome.status is TaskStatus.SUCCEEDED and not outcome.solo and not outcome.parent_id:
            self._cache.remember_output(
                task.job_id,
                task.name,
                {
                    "output": outcome.response_body,
                    "status_code": outcome.response_status,
                    "headers": outcome.response_headers or {},
                    "status": TaskStatus.SUCCEEDED.value,
                },
            )

    async def _load_context(self, task: ClaimedTask) -> dict[str, Any]:
        cached = self._cache.context(task.job_id, task.upstream)
        if cached is not None:
            return cached
        job, upstream = await self._store.render_inputs(task.job_id, task.upstream)
        self._cache.remember_job(job.id, job.params or {}, job.name, job.context)
        return {
            "params": job.params or {},
            "job_id": job.id,
            "job_name": job.name,
            "upstream": upstream,
            "extra": job.context,
        }

    # --- helpers -------------------------------------------------------------------------
    async def _every(
        self, what: str, interval: float, step: Callable[[], Awaitable[None]], *, first: bool
    ) -> None:
        """Run ``step`` every ``interval`` seconds (at once too when ``first``), surviving
        transient errors."""
        backoff = Backoff(cap=max(interval, 5.0))
        if not first:
            await asyncio.sleep(interval)
        while True:
            try:
                await step()
            except Exception as exc:
                await self._survive(what, exc, backoff)
                continue
            if backoff.failures:
                log.warning("%s works again", what)
                backoff.reset()
            await asyncio.sleep(interval)

    async def _heartbeat(self) -> None:
        interval = max(self.config.lease_seconds / 3, 0.05)
        await self._every("renewing leases", interval, self._renew_leases, first=False)

    async def _renew_leases(self) -> None:
        if self._running:
            await self._store.heartbeat(
                worker=self.name,
                task_ids=list(self._running),
                lease_seconds=self.config.lease_seconds,
            )

    async def _cancel_watch(self) -> None:
        """Interrupt calls whose task was ended elsewhere (canceled, expired, lease lost).

        Without a broker (or while it is down) the running calls are checked every
        ``cancel_check_interval``; while a broker carries cancel signals, as soon as one names
        a job running here, and otherwise only every poll interval."""
        backoff = Backoff()
        while True:
            interval = self.config.cancel_check_interval
            if self._signals.connected:
                interval = max(interval, self.config.poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_cancels.wait(), interval)
            self._check_cancels.clear()
            try:
                await self._interrupt_stale()
            except Exception as exc:
                await self._survive("watching for cancels", exc, backoff)
                continue
            if backoff.failures:
                log.warning("watching for cancels works again")
                backoff.reset()

    async def _interrupt_stale(self) -> None:
        if not self._running:
            return
        snapshot = {tid: attempt for tid, (attempt, _) in self._running.items()}
        states = await self._store.running_states(list(snapshot))
        stale = [
            (tid, attempt)
            for tid, attempt in snapshot.items()
            if states.get(tid) != (TaskStatus.RUNNING.value, attempt)
        ]
        self.interrupt(stale)

    async def _follow_signals(self) -> None:
        """A broker's signals: ready tasks wake the claim loop, a cancel naming a job that runs
        here checks the running calls now; after an outage both look at the database again.
        When the broker goes down, the cancel watch goes back to its short interval at once."""
        async with self._signals.subscribe([READY, CANCEL]) as signals:
            async for signal in signals:
                if signal.channel == READY:
                    self._store.wakeup.notify()
                elif signal.channel == CANCEL:
                    if signal.payload in self._job_of.values():
                        self._check_cancels.set()
                elif signal.channel in (RESUMED, DOWN):
                    self._store.wakeup.notify()
                    self._check_cancels.set()

    async def _listen(self, listener: ReadyListener) -> None:
        """PostgreSQL: wake the claim loop on every ``NOTIFY`` from another process's commit.
        A lost listening connection is opened again (polling covers the gap)."""
        backoff = Backoff()
        try:
            while True:
                try:
                    if not listener.listening:
                        await listener.start()
                        if backoff.failures:
                            log.warning("listening for ready tasks works again")
                        backoff.reset()
                        # Whatever was announced while we were deaf: look at the queue now.
                        self._store.wakeup.notify()
                    await asyncio.sleep(self.config.poll_interval)
                except Exception as exc:
                    await listener.close()
                    await self._survive("listening for ready tasks", exc, backoff)
        finally:
            await listener.close()

    async def _watch_commits(self, watch: FileChangeWatch) -> None:
        """Wake the claim loop when another process commits (jobs submitted to another API
        process on the same SQLite file) instead of waiting for the poll interval."""
        while True:
            await asyncio.sleep(self.config.change_check_interval)
            if self._slots.free() > 0 and watch.changed():
                self._store.wakeup.notify()

    async def _reaper(self) -> None:
        await self._every("sweeping", self.config.reaper_interval, self.reap, first=True)

    async def reap(self, *, now: float | None = None) -> None:
        """One sweep: lost leases, expired tasks, jobs past their TTL (``now``: for tests)."""
        reaped = await self._store.reap(max_rescues=self.config.max_rescues, now=now)
        self.interrupt(reaped.interrupted)
        announce_interrupts(self._signals, reaped)
        self._metrics.swept(reaped.transitions)
        log_sweep(reaped.transitions)

    async def _drain(self) -> None:
        """Let running calls finish for the grace period, then hand the rest back."""
        if not self._running:
            return
        runners = [runner for _, runner in self._running.values()]
        _, pending = await asyncio.wait(runners, timeout=self.config.shutdown_grace)
        if not pending:
            return
        left = [(tid, attempt) for tid, (attempt, runner) in self._running.items()]
        for runner in pending:
            runner.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self._store.hand_back(left)
        except Exception as exc:
            log.warning(
                "could not hand %d unfinished tasks back (%s); their leases will expire and "
                "the reaper will queue them again",
                len(left),
                exc,
            )
            return
        log.warning("handed %d unfinished tasks back to the queue at shutdown", len(left))


def announce_interrupts(signals: Signals, reaped: Reaped) -> None:
    """Tell the workers of other processes that a sweep ended calls they may be running (with a
    broker; without one, their cancel watch finds out)."""
    if reaped.interrupted:
        for job_id in {t.job_id for t in reaped.transitions}:
            signals.publish(CANCEL, job_id)
