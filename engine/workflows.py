"""The workflow-definition half of the :class:`~engine.service.Engine` facade: save, read and
delete named, versioned definitions, and start jobs from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine.jobs import views
from engine.jobs.definitions import parse_definition, run_spec
from engine.store import NewDefinition, Store
from schemas.workflows import WorkflowRun

if TYPE_CHECKING:
    from engine.jobs.validation import ValidatedJob
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


class WorkflowMethods:
    """Mixed into ``Engine``, which provides the store, validation and submission."""

    _store: Store

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
        ) -> SubmitResult: ...

    async def put_workflow(self, name: str, document: Any) -> SavedWorkflow:
        """Validate a definition like a job (``params`` typed by its ``params_schema``) and
        store it: a new version when it differs from the latest, else the latest as it is."""
        definition = parse_definition(name, document)
        await self.validate(definition.spec, params_schema=definition.params_schema)
        saved = await self._store.put_definition(
            NewDefinition(
                name=name,
                description=definition.description,
                params_schema=definition.params_schema,
                document=definition.document,
                digest=definition.digest,
            )
        )
        versions = await self._store.definition_versions(name)
        return SavedWorkflow(
            definition=views.workflow_view(saved.row, versions), created=saved.created
        )

    async def get_workflow(self, name: str, version: int | None = None) -> dict[str, Any]:
        """One version (the latest by default) with the list of all versions."""
        row = await self._store.definition(name, version)
        return views.workflow_view(row, await self._store.definition_versions(name))

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
        row = await self._store.definition(name, version)
        spec = run_spec(row, run)
        ref = {"name": row.name, "version": row.version}
        result = await self.submit(
            spec,
            owner=owner,
            idempotency_key=idempotency_key,
            document={"workflow": name, "run": run.model_dump(mode="json")},
            params_schema=row.params_schema,
            workflow={**ref, "context": dict(context) if context else None},
        )
        if result.existing:
            job, _ = await self._store.job(result.job_id)
            ref = {"name": job.workflow_name, "version": job.workflow_version}
        return StartedRun(
            job_id=result.job_id,
            status=result.status,
            existing=result.existing,
            warnings=result.warnings,
            workflow=ref,
        )
