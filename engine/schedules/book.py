"""Schedules as the API and the CLI see them: create, apply, update, delete, read, and the
firing of due ticks (one job per tick across every process, by :meth:`Store.fire`)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from sqlalchemy import Row

from engine.errors import JobInvalid, NotFound, Problem
from engine.jobs.loader import LoadedDocument, parse_workflow
from engine.jobs.submission import build_rows
from engine.jobs.validation import ValidatedJob
from engine.schedules.context import iso_utc, schedule_context
from engine.schedules.timing import CatchUp, Cron, CronError, due
from engine.schedules.workflow_runs import PrepareRun, workflow_rows
from engine.store import Fired, NewJob, Store
from engine.templates import SandboxEnvironment
from schemas.jobs import JobSpec
from schemas.schedules import UPCOMING

log = logging.getLogger("jobqueue.schedules")

#: how many handled ticks ``get`` shows
RECENT = 10
#: schedules handled per pass of the scheduler (the rest on the next pass, at once)
DUE_BATCH = 100


class Validate(Protocol):
    def __call__(
        self, spec: JobSpec, *, single_call: bool = ..., scheduled: bool = ...
    ) -> Awaitable[ValidatedJob]: ...


def _single_call(document: Any) -> bool:
    return isinstance(document, dict) and "tasks" not in document


def _under(prefix: str, problems: Sequence[Problem]) -> list[Problem]:
    return [replace(p, location=prefix + p.location) for p in problems]


class ScheduleBook:
    def __init__(
        self,
        store: Store,
        validate: Validate,
        interrupt: Callable[[Sequence[tuple[int, int]]], None],
        prepare: PrepareRun,
        templates: SandboxEnvironment,
    ) -> None:
        self._store = store
        self._validate = validate
        self._interrupt = interrupt
        self._prepare = prepare
        self._templates = templates
        #: called after a change that can move the earliest tick (wakes this process's loops)
        self.on_change: list[Callable[[], None]] = []

    # --- checks ---------------------------------------------------------------------------
    @staticmethod
    def cron(expression: str, timezone: str) -> Cron:
        try:
            return Cron(expression, timezone)
        except CronError as exc:
            problem = Problem(code="invalid_cron", location=f"/{exc.field}", message=str(exc))
            raise JobInvalid([problem]) from None

    async def check_job(self, document: Any, *, name: str) -> ValidatedJob:
        """The creation-time validation of POST /jobs, with locations under ``/job``."""
        loaded = LoadedDocument(document=document, marks={})
        try:
            spec = parse_workflow(loaded)
            if spec.name is None:
                spec = spec.model_copy(update={"name": name})
            return await self._validate(spec, single_call=_single_call(document), scheduled=True)
        except JobInvalid as exc:
            raise JobInvalid(_under("/job", exc.errors), _under("/job", exc.warnings)) from None

    async def workflow_rows(
        self, workflow: dict[str, Any], *, schedule_id: str, name: str, tick: float, owner: str
    ) -> NewJob:
        """The job a tick of a ``workflow`` schedule starts (``JobInvalid`` under ``/workflow``)."""
        return await workflow_rows(
            workflow,
            store=self._store,
            prepare=self._prepare,
            env=self._templates,
            schedule_id=schedule_id,
            name=name,
            fire_time=tick,
            owner=owner,
        )

    async def _checked(
        self,
        fields: dict[str, Any],
        expression: str,
        zone: str,
        name: str,
        *,
        schedule_id: str = "",
        owner: str = "",
    ) -> Cron:
        """The schedule's cron; every problem of the cron, the job and the workflow at once.
        A workflow's params are rendered for the next tick and checked as that tick will."""
        errors: list[Problem] = []
        warnings: list[Problem] = []
        cron = None
        try:
            cron = self.cron(expression, zone)
        except JobInvalid as exc:
            errors += exc.errors
        if fields.get("workflow") is not None:
            now = time.time()
            tick = cron.next_after(now) if cron is not None else now
            try:
                await self.workflow_rows(
                    fields["workflow"], schedule_id=schedule_id, name=name, tick=tick, owner=owner
                )
            except JobInvalid as exc:
                errors += exc.errors
                warnings += exc.warnings
        if fields.get("job") is not None:
            try:
                await self.check_job(fields["job"], name=name)
            except JobInvalid as exc:
                errors += exc.errors
                warnings += exc.warnings
        if errors or cron is None:
            raise JobInvalid(errors, warnings)
        return cron

    # --- writes ---------------------------------------------------------------------------
    async def create(self, fields: dict[str, Any], *, owner: str = "") -> dict[str, Any]:
        """Store a schedule; ``owner`` (the creating key's name) owns it and the jobs it makes."""
        cron = await self._checked(
            fields, fields["cron"], fields["timezone"], fields["name"], owner=owner
        )
        enabled = fields.get("enabled", True)
        next_fire_at = cron.next_after(time.time()) if enabled else None
        row = await self._store.create_schedule(
            {**fields, "owner": owner, "next_fire_at": next_fire_at}
        )
        self._changed()
        return await self._view(row, detail=True)

    async def update(
        self, key: str, fields: dict[str, Any], *, owner: str | None = None
    ) -> dict[str, Any]:
        current = await self._store.schedule(key, owner=owner)
        fields = {k: v for k, v in fields.items() if v is not None}  # null: left as it is
        merged = {
            "cron": current.cron,
            "timezone": current.timezone,
            "enabled": current.enabled,
            **fields,
        }
        cron = await self._checked(
            fields,
            merged["cron"],
            merged["timezone"],
            current.name,
            schedule_id=current.id,
            owner=current.owner,
        )
        if fields.get("job") is not None:
            fields = {**fields, "workflow": None}
        if fields.get("workflow") is not None:
            fields = {**fields, "job": None}
        timing = {"cron", "timezone", "enabled"} & fields.keys()
        if timing:
            # A new rule starts from now; re-enabling does not fire the ticks missed meanwhile.
            now = time.time()
            fields["next_fire_at"] = cron.next_after(now) if merged["enabled"] else None
        row = await self._store.update_schedule(current.id, fields, owner=owner)
        self._changed()
        return await self._view(row, detail=True)

    async def apply(self, fields: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the schedule named ``fields["name"]``, or update it; true when created."""
        try:
            await self._store.schedule(fields["name"])
        except NotFound:
            return await self.create(fields), True
        rest = {k: v for k, v in fields.items() if k != "name"}
        return await self.update(fields["name"], rest), False

    async def delete(self, key: str, *, owner: str | None = None) -> None:
        await self._store.delete_schedule(key, owner=owner)
        self._changed()

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    # --- reads ----------------------------------------------------------------------------
    async def all(self, *, owner: str | None = None) -> list[dict[str, Any]]:
        return [await self._view(r) for r in await self._store.schedules(owner=owner)]

    async def get(self, key: str, *, owner: str | None = None) -> dict[str, Any]:
        return await self._view(await self._store.schedule(key, owner=owner), detail=True)

    async def _view(self, row: Row[Any], *, detail: bool = False) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": row.id,
            "name": row.name,
            "cron": row.cron,
            "timezone": row.timezone,
            "job": row.job,
            "workflow": row.workflow,
            "enabled": row.enabled,
            "overlap": row.overlap,
            "catch_up": row.catch_up,
            "next_fire_at": iso_utc(row.next_fire_at) if row.next_fire_at is not None else None,
            "created_at": iso_utc(row.created_at),
            "updated_at": iso_utc(row.updated_at),
        }
        if detail:
            upcoming: list[float] = []
            if row.next_fire_at is not None:
                upcoming = [row.next_fire_at]
                with contextlib.suppress(CronError):  # the scheduler disables such a schedule
                    cron = Cron(row.cron, row.timezone)
                    upcoming += cron.upcoming(row.next_fire_at, UPCOMING - 1)
            view["upcoming"] = [iso_utc(t) for t in upcoming]
            fires = await self._store.schedule_fires(row.id, limit=RECENT)
            view["recent"] = [
                {
                    "fire_time": iso_utc(f.fire_time),
                    "outcome": f.outcome,
                    "job_id": f.job_id,
                    "detail": f.detail,
                }
                for f in fires
            ]
        return view

    # --- ticks ----------------------------------------------------------------------------
    async def next_fire(self) -> float | None:
        return await self._store.next_schedule_fire()

    async def fire_due(self, now: float) -> list[Fired]:
        """Handle every tick that is due at ``now``, by each schedule's catch-up rule."""
        fired: list[Fired] = []
        for row in await self._store.due_schedules(now, limit=DUE_BATCH):
            try:
                fired += await self._fire_schedule(row, now)
            except CronError as exc:
                # stored before a tzdata or library change made it invalid: stop it, loudly
                log.error("schedule %s is disabled: %s", row.name, exc)
                await self._store.update_schedule(row.id, {"enabled": False, "next_fire_at": None})
        return fired

    async def _fire_schedule(self, row: Row[Any], now: float) -> list[Fired]:
        cron = Cron(row.cron, row.timezone)
        plan = due(cron, next_fire_at=row.next_fire_at, now=now, catch_up=CatchUp(row.catch_up))
        if plan.missed:
            log.warning(
                "schedule %s: %d missed ticks skipped (catch_up %s)",
                row.name,
                plan.missed,
                row.catch_up,
            )
        if not plan.fire:
            await self._store.advance_schedule(row.id, plan.next_fire_at)
            return []
        results = []
        following = [*plan.fire[1:], plan.next_fire_at]
        for tick, after in zip(plan.fire, following, strict=True):
            new, detail = await self._rows(row, tick)
            result = await self._store.fire(
                schedule_id=row.id,
                fire_time=tick,
                next_fire_at=after,
                new=new,
                overlap=row.overlap,
                detail=detail,
            )
            self._report(row, tick, result)
            results.append(result)
            if result.outcome == "gone":
                break
        return results

    async def _rows(self, row: Row[Any], tick: float) -> tuple[NewJob | None, str | None]:
        if row.job is None:
            try:
                new = await self.workflow_rows(
                    row.workflow, schedule_id=row.id, name=row.name, tick=tick, owner=row.owner
                )
            except JobInvalid as exc:
                return None, f"the workflow was refused: {exc}"
            return new, None
        try:
            validated = await self.check_job(row.job, name=row.name)
        except JobInvalid as exc:
            return None, f"the job was refused: {exc}"
        context = schedule_context(schedule_id=row.id, name=row.name, fire_time=tick)
        new = build_rows(
            validated, single_call=_single_call(row.job), owner=row.owner, context=context
        )
        return new, None

    def _report(self, row: Row[Any], tick: float, result: Fired) -> None:
        when = iso_utc(tick)
        if result.canceled is not None:
            self._interrupt(result.interrupted)
            log.info("schedule %s: canceled the previous job %s", row.name, result.canceled)
        if result.outcome == "fired":
            log.info(
                "schedule %s: tick %s created job %s",
                row.name,
                when,
                result.job_id,
                extra={"job_id": result.job_id},
            )
        elif result.outcome == "taken":
            log.debug("schedule %s: tick %s was handled by another process", row.name, when)
        elif result.outcome in ("skipped", "failed"):
            log.warning("schedule %s: tick %s %s", row.name, when, result.outcome)
