"""The workflow-definition half of the :class:`~engine.service.Engine` facade: save, read and
delete named, versioned definitions, and start jobs from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from engine.config import EngineConfig
from engine.errors import JobInvalid, NotFound, Problem
from engine.jobs import views
from engine.jobs.definitions import find_circle, parse_definition, run_spec
from engine.jobs.submission import build_rows, request_hash
from engine.jobs.subworkflows import DefinitionInfo, definition_info, master_names
from engine.runtime.attempt import ContextLoader, failed
from engine.security.access import audit_creation
from engine.store import ClaimedTask, NewDefinition, NewJob, Outcome, Store, Submitted
from engine.templates import SandboxEnvironment, TemplateError, build_context, render_value
from schemas.workflows import WorkflowRun

if TYPE_CHECKING:
    from engine.jobs.validation import ValidatedJob
    from engine.security.access import Actor
    from engine.service import SubmitResult

from schemas.jobs import JobSpec


@dataclass(frozen=True, kw_only=True)
class SavedWorkflow:
    """What ``put_workflow`` did: ``created`` is false when the document was identical to the
    latest version (which is then the one returned)."""

    definition: dict[str, Any]
    created: bool


@dataclass(frozen=True, kw_only=True)
class StartedRun:
    job_id: str
    status: str
    existing: bool
    warnings: list[dict[str, Any]]
    #: ``{"name", "version"}`` of the definition the job runs
    workflow: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class PreparedRun:
    """The rows of a job of a definition, validated and built but not stored yet."""

    rows: NewJob
    warnings: list[dict[str, Any]]
    #: ``{"name", "version"}`` of the definition the job runs
    workflow: dict[str, Any]


class WorkflowMethods:
    """Mixed into ``Engine``, which provides the store, validation and submission."""

    _store: Store
    config: EngineConfig

    @property
    def _templates(self) -> SandboxEnvironment:
        env: SandboxEnvironment | None = getattr(self, "_child_templates", None)
        if env is None:
            env = SandboxEnvironment(max_output_bytes=self.config.max_template_output_bytes)
            self._child_templates = env
        return env

    async def _definitions_for(self, spec: JobSpec) -> dict[tuple[str, int | None], DefinitionInfo]:
        """The stored definitions the sub-workflow tasks of a job name (missing ones left out:
        validation reports them)."""
        wanted = {(t.workflow.name, t.workflow.version) for t in spec.tasks if t.workflow}
        found: dict[tuple[str, int | None], DefinitionInfo] = {}
        for name, version in sorted(wanted, key=lambda k: (k[0], k[1] or 0)):
            try:
                row = await self._store.definition(name, version)
            except NotFound:
                if version is None:
                    continue
                try:  # known under its latest version: the report names the version
                    row = await self._store.definition(name, None)
                except NotFound:
                    continue
                version = None
            names = sorted(master_names(row.document))
            rows = await self._store.masters(names) if names else []
            masters = {r.name: (r.input_schema, r.output_schema) for r in rows}
            found[(name, version)] = definition_info(row, masters)
        return found

    if TYPE_CHECKING:

        async def validate(
            self, spec: JobSpec, *, single_call: bool = False, params_schema: Any = None
        ) -> ValidatedJob: ...

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
        ) -> SubmitResult: ...

        async def _write_submission(self, rows: NewJob) -> Submitted: ...

        def mask(self, document: Any) -> Any: ...

    async def put_workflow(self, name: str, document: Any) -> SavedWorkflow:
        """Validate a definition like a job (``params`` typed by its ``params_schema``) and
        store it: a new version when it differs from the latest, else the latest as it is."""
        definition = parse_definition(name, document)
        await self.validate(definition.spec, params_schema=definition.params_schema)
        uses = sorted({t.workflow.name for t in definition.spec.tasks if t.workflow})
        circle = find_circle(name, uses, await self._store.definition_uses())
        if circle:
            raise JobInvalid(
                [
                    Problem(
                        code="circular_workflow",
                        location="/tasks",
                        message="the definitions would run each other in a circle: "
                        + " -> ".join(circle),
                        actual=circle,
                    )
                ]
            )
        saved = await self._store.put_definition(
            NewDefinition(
                name=name,
                description=definition.description,
                params_schema=definition.params_schema,
                document=definition.document,
                digest=definition.digest,
                uses=tuple(uses),
            )
        )
        versions = await self._store.definition_versions(name)
        return SavedWorkflow(
            definition=self.mask(views.workflow_view(saved.row, versions)), created=saved.created
        )

    async def get_workflow(self, name: str, version: int | None = None) -> dict[str, Any]:
        """One version (the latest by default) with the list of all versions."""
        row = await self._store.definition(name, version)
        return self.mask(views.workflow_view(row, await self._store.definition_versions(name)))

    async def list_workflows(self) -> list[dict[str, Any]]:
        return [views.workflow_summary(r) for r in await self._store.definitions()]

    async def delete_workflow(self, name: str) -> None:
        """Delete every version; ``Conflict`` while another definition uses it. Jobs started
        from it keep running and keep its name."""
        await self._store.delete_definition(name)

    async def start_workflow(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        tags: Sequence[str] = (),
        priority: int | None = None,
        scheduled_at: datetime | None = None,
        context: Mapping[str, Any] | None = None,
        owner: str = "",
        idempotency_key: str | None = None,
        by: Actor | None = None,
    ) -> StartedRun:
        """Start a job of a definition (its latest version unless ``version``).

        ``params`` go over the definition's defaults and must satisfy its ``params_schema``
        (``JobInvalid`` otherwise). ``context`` (for instance a schedule's
        ``{"schedule": {"fire_time": ...}}``) is kept on the job and shown in its detail.
        """
        run = WorkflowRun(
            params=dict(params or {}),
            version=version,
            tags=list(tags),
            priority=priority,
            scheduled_at=scheduled_at,
        )
        prepared = await self.prepare_run(
            name,
            run,
            workflow_context=context,
            owner=owner,
            idempotency_key=idempotency_key,
        )
        audit_creation(prepared.rows, by)
        done = await self._write_submission(prepared.rows)
        ref = prepared.workflow
        if done.existing:
            job, _ = await self._store.job(done.job_id)
            ref = {"name": job.workflow_name, "version": job.workflow_version}
        return StartedRun(
            job_id=done.job_id,
            status=done.status,
            existing=done.existing,
            warnings=prepared.warnings,
            workflow=ref,
        )

    async def prepare_run(
        self,
        name: str,
        run: WorkflowRun,
        *,
        workflow_context: Mapping[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        owner: str = "",
        idempotency_key: str | None = None,
    ) -> PreparedRun:
        """The rows of a run of a definition (``run.version``, else its latest version), every
        check of :meth:`start_workflow` done, nothing stored: ``NotFound`` for an unknown name or
        version, ``JobInvalid`` for params outside ``params_schema`` (under ``/params``).
        ``workflow_context`` is shown with the job's ``workflow``; ``extra`` holds the job's
        own template roots (a schedule's ``schedule``)."""
        row = await self._store.definition(name, run.version)
        spec = run_spec(row, run)
        validated = await self.validate(spec, params_schema=row.params_schema)
        document = {"workflow": name, "run": run.model_dump(mode="json")}
        ref = {"name": row.name, "version": row.version}
        rows = build_rows(
            validated,
            single_call=False,
            owner=owner,
            idempotency_key=idempotency_key,
            document_hash=request_hash(document) if idempotency_key else None,
            workflow={**ref, "context": dict(workflow_context) if workflow_context else None},
            context=extra,
        )
        return PreparedRun(
            rows=rows, warnings=[w.to_dict() for w in validated.warnings], workflow=ref
        )

    async def _start_child(self, task: ClaimedTask, load: ContextLoader) -> Outcome | None:
        """Start the child job of a sub-workflow task (rendered params, checked like a run);
        the outcome that fails the task at once, or ``None`` once the child is stored."""
        call = task.spec.workflow
        assert call is not None
        parent = await self._store.job_row(task.job_id)
        depth = (parent.depth or 0) + 1
        limit = self.config.max_workflow_depth
        if depth > limit:
            message = (
                f"sub-workflows nest {depth} deep; at most {limit} (JOBQUEUE_MAX_WORKFLOW_DEPTH)"
            )
            return failed(task, {"type": "max_depth", "message": message})
        context = build_context(**(await load(task)))
        if task.spec.parent_id is not None:
            context |= {"item": task.spec.item, "item_index": task.spec.item_index}
        pointer = f"/tasks/{task.spec.position}/workflow/params"
        try:
            params = render_value(call["params"], context, pointer=pointer, env=self._templates)
        except TemplateError as exc:
            return failed(task, {"type": "template", "message": str(exc)})
        if not isinstance(params, dict):
            return failed(
                task, {"type": "template", "message": "workflow.params must be an object"}
            )
        try:
            row = await self._store.definition(call["name"], call.get("version"))
            spec = run_spec(row, WorkflowRun(params=params))
            validated = await self.validate(spec, params_schema=row.params_schema)
        except JobInvalid as exc:
            errors = [p.to_dict() for p in exc.errors]
            message = f"the child job of workflow {call['name']!r} is invalid: {exc}"
            return failed(
                task, {"type": "subworkflow_invalid", "message": message, "errors": errors}
            )
        except (NotFound, ValidationError) as exc:
            return failed(task, {"type": "subworkflow_invalid", "message": str(exc)})
        child = build_rows(
            validated,
            single_call=False,
            owner=parent.owner,
            workflow={"name": row.name, "version": row.version},
            parent=(task.job_id, task.name, depth),
        )
        await self._store.start_child(task, child)
        return None
