"""A schedule's ``workflow``: its params rendered for a tick (``{{ schedule.fire_time }}``) and
the job of the stored definition built from them, every problem located under ``/workflow``."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from engine.errors import JobInvalid, NotFound, Problem
from engine.schedules.context import schedule_context
from engine.store import NewJob, Store
from engine.templates import SandboxEnvironment, TemplateError, render_value
from engine.workflows import PreparedRun
from schemas.workflows import WorkflowRun

PARAMS = "/workflow/params"


class PrepareRun(Protocol):
    def __call__(
        self, name: str, run: WorkflowRun, *, extra: dict[str, Any] | None = ..., owner: str = ...
    ) -> Awaitable[PreparedRun]: ...


def _located(problems: Sequence[Problem]) -> list[Problem]:
    """``/params/...`` of a run becomes ``/workflow/params/...``; anything else of the
    definition's job goes under ``/workflow``."""
    return [replace(p, location="/workflow" + p.location) for p in problems]


async def workflow_rows(
    workflow: dict[str, Any],
    *,
    store: Store,
    prepare: PrepareRun,
    env: SandboxEnvironment,
    schedule_id: str,
    name: str,
    fire_time: float,
    owner: str,
) -> NewJob:
    """The job of one tick: ``workflow["params"]`` rendered with ``schedule``, laid over the
    definition's defaults and checked against its ``params_schema`` (the pinned ``version``,
    else the latest at this moment). ``JobInvalid`` with every problem otherwise."""
    context = schedule_context(schedule_id=schedule_id, name=name, fire_time=fire_time)
    try:
        params = render_value(workflow.get("params") or {}, context, pointer=PARAMS, env=env)
    except TemplateError as exc:
        problem = Problem(code="template_error", location=exc.pointer, message=exc.message)
        raise JobInvalid([problem]) from None
    assert isinstance(params, dict)  # rendering keeps the shape; only leaves change
    version = workflow.get("version")
    run = WorkflowRun(params=params, version=version)
    try:
        prepared = await prepare(workflow["name"], run, extra=context, owner=owner)
    except NotFound:
        raise JobInvalid([await _missing(store, workflow["name"], version)]) from None
    except JobInvalid as exc:
        raise JobInvalid(_located(exc.errors), _located(exc.warnings)) from None
    return prepared.rows


async def _missing(store: Store, name: str, version: int | None) -> Problem:
    if version is not None:
        try:
            await store.definition(name, None)
        except NotFound:
            pass
        else:
            return Problem(
                code="unknown_workflow_version",
                location="/workflow/version",
                message=f"workflow {name!r} has no version {version}",
                actual=version,
            )
    return Problem(
        code="unknown_workflow",
        location="/workflow/name",
        message=f"no workflow definition is named {name!r} (PUT /api/v1/workflows/{name})",
        actual=name,
    )
