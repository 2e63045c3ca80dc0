"""Creation-time validation: one report with every problem of a job.

:func:`validate_job` checks the graph (``engine.dag``), template syntax (``engine.templates``),
InterfaceMaster names, that schemas are valid draft-07, and — when ``validate_interfaces`` is true
and the graph is sound — the compatibility of every task with its upstream outputs
(``engine.contracts``). It raises :class:`JobInvalid` with all errors, or returns the
:class:`ValidatedJob` the store keeps (upstream lists, the schema snapshot, warnings) with a
topological order of the tasks.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import orjson

from engine.contracts import (
    check_task,
    check_variables,
    for_each_items,
    memo_scope,
    schema_problems,
)
from engine.dag import GraphResult, NameHints, build_graph, topological_order
from engine.errors import JobInvalid, Problem
from engine.jobs.subworkflows import DefinitionInfo
from engine.jsonpointer import escape_token
from engine.schedules.context import schedule_problems
from engine.templates import (
    VariableReference,
    find_variable_references,
    has_template,
    root_reads,
    syntax_problems,
)
from schemas.jobs import JobSpec, TaskSpec

Schema = dict[str, Any] | bool | None
_SINGLE_CALL_PREFIX = "/tasks/0"


@dataclass(frozen=True)
class InterfaceSchemas:
    """The schemas an InterfaceMaster provides (``None``: no schema, anything goes)."""

    input_schema: Schema = None
    output_schema: Schema = None


@dataclass(frozen=True, kw_only=True)
class ValidatedJob:
    spec: JobSpec
    #: every task's direct upstream tasks, explicit ``depends_on`` and implied by templates
    upstream: dict[str, tuple[str, ...]]
    #: the schemas each task is checked against (inline ones override the master's): the
    #: snapshot the job keeps, whatever later happens to the stored masters
    schemas: dict[str, InterfaceSchemas]
    #: a topological order of the task names
    order: tuple[str, ...]
    warnings: list[Problem]


def validate_job(
    spec: JobSpec,
    masters: Mapping[str, InterfaceSchemas],
    *,
    single_call: bool = False,
    params_schema: Schema = None,
    workflows: Mapping[tuple[str, int | None], DefinitionInfo] | None = None,
    scheduled: bool = False,
) -> ValidatedJob:
    """Validate a job; raise :class:`JobInvalid` with every error (and the warnings).

    ``masters`` are the stored InterfaceMasters by name; the job's own ``interfaces`` win over
    them. ``scheduled``: a schedule creates the job, so its templates may read ``schedule``.
    With ``single_call`` the locations point into the single-call document (``/body/ids``
    instead of ``/tasks/0/body/ids``). With ``params_schema`` (a workflow definition's), every
    ``params.x`` a template reads must be declared by it, and is typed by it. ``workflows`` are
    the stored definitions that sub-workflow tasks name, by (name, version or ``None`` for the
    latest); a name missing from it is an ``unknown_workflow``.
    """
    plain = _plain_single_task(spec) if params_schema is None else None
    if plain is not None:
        return plain
    with _gc_paused():
        graph = build_graph(spec)
        syntax = _syntax_problems(spec)
        resolved = _Resolver(spec, masters, workflows or {})
        errors = [*graph.problems, *syntax, *resolved.problems, *_callback_problems(spec)]
        errors += schedule_problems(spec, scheduled=scheduled)
        warnings: list[Problem] = []
        if spec.validate_interfaces and not graph.problems:
            broken = {p.task for p in syntax}
            more, warnings = _check_interfaces(spec, graph, resolved, broken)
            errors += more
        if params_schema is not None:
            more, warned = _check_params(spec, params_schema, resolved, {p.task for p in syntax})
            errors += more
            warnings += warned
        order = (
            () if errors else tuple(topological_order([t.name for t in spec.tasks], graph.upstream))
        )
    if single_call:
        errors, warnings = _into_single_call(errors), _into_single_call(warnings)
    if errors:
        raise JobInvalid(errors=errors, warnings=warnings)
    return ValidatedJob(
        spec=spec,
        upstream=graph.upstream,
        schemas=resolved.schemas,
        order=order,
        warnings=warnings,
    )


def _plain_single_task(spec: JobSpec) -> ValidatedJob | None:
    """The common single call (one task, no template, dependency or schema) has nothing the
    full analysis could find; answering it directly keeps submission cheap (hot path)."""
    if len(spec.tasks) != 1:
        return None
    task = spec.tasks[0]
    if (
        task.depends_on
        or task.workflow is not None
        or task.for_each
        or task.when
        or task.interface
        or task.input_schema is not None
        or task.output_schema is not None
        or has_template([task.url, task.headers, task.params, task.body])
    ):
        return None
    return ValidatedJob(
        spec=spec,
        upstream={task.name: ()},
        schemas={task.name: InterfaceSchemas()},
        order=(task.name,),
        warnings=[],
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Validation makes many small objects that all live until it returns; the cyclic GC's passes
    over them would only double its time (measured on 10,000 tasks). Restores the prior state."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        with memo_scope():
            yield
    finally:
        if enabled:
            gc.enable()


def task_syntax_problems(task: TaskSpec, index: int) -> list[Problem]:
    """Template syntax problems of one task's url, headers, params, body and ``when``."""
    base = f"/tasks/{index}"
    found = syntax_problems(task.url, pointer=f"{base}/url", task=task.name)
    for field in ("headers", "params", "body"):
        value = getattr(task, field)
        if value:
            found += syntax_problems(value, pointer=f"{base}/{field}", task=task.name)
    if task.when:
        found += syntax_problems(task.when, pointer=f"{base}/when", task=task.name, condition=True)
    if task.for_each:
        found += syntax_problems(task.for_each, pointer=f"{base}/for_each", task=task.name)
    if task.workflow is not None and task.workflow.params:
        where = f"{base}/workflow/params"
        found += syntax_problems(task.workflow.params, pointer=where, task=task.name)
    return found


def _callback_problems(spec: JobSpec) -> list[Problem]:
    """Reads of ``callback`` that cannot render: any in a task without ``callback``, and fields
    other than ``url`` and ``token`` in a callback task."""
    problems = []
    for i, task in enumerate(spec.tasks):
        parts: dict[str, Any] = {"url": task.url, "headers": task.headers}
        parts |= {"params": task.params, "body": task.body}
        reads = [
            read
            for field, value in parts.items()
            for read in root_reads(value, "callback", pointer=f"/tasks/{i}/{field}")
        ]
        if task.when:
            reads += root_reads(task.when, "callback", pointer=f"/tasks/{i}/when", condition=True)
        for where, path in reads:
            if task.callback is None:
                problems.append(_callback_problem(task, where, _NOT_A_CALLBACK_TASK))
            elif path and isinstance(path[0], str) and path[0] not in ("url", "token"):
                problems.append(_callback_problem(task, where, _CALLBACK_FIELDS))
    return problems


_NOT_A_CALLBACK_TASK = (
    "`callback` is defined only in callback tasks: add "
    '"callback": {"timeout_sec": ...} to this task'
)
_CALLBACK_FIELDS = "a callback task's templates can read `callback.url` and `callback.token` only"


def _callback_problem(task: TaskSpec, where: str, message: str) -> Problem:
    return Problem(
        code="unknown_variable", task=task.name, location=where, message=message, actual="callback"
    )


def _syntax_problems(spec: JobSpec) -> list[Problem]:
    return [p for i, task in enumerate(spec.tasks) for p in task_syntax_problems(task, i)]


class _Resolver:
    """Each task's schemas (inline > job ``interfaces`` > stored masters) and their problems."""

    def __init__(
        self,
        spec: JobSpec,
        masters: Mapping[str, InterfaceSchemas],
        workflows: Mapping[tuple[str, int | None], DefinitionInfo],
    ) -> None:
        self.problems: list[Problem] = []
        #: the definition each sub-workflow task runs
        self.children: dict[str, DefinitionInfo] = {}
        self.schemas: dict[str, InterfaceSchemas] = {}
        #: (task, "input" | "output") whose schema is not valid draft-07
        self.invalid: set[tuple[str, str]] = set()
        self._checked: dict[bytes, list[Problem]] = {}
        #: the ``for_each`` tasks
        self.mapped = {t.name for t in spec.tasks if t.for_each}
        known = dict(masters)
        for name, inline in spec.interfaces.items():
            where = f"/interfaces/{escape_token(name)}"
            known[name] = InterfaceSchemas(
                input_schema=self._valid(inline.input_schema, f"{where}/input_schema", None),
                output_schema=self._valid(inline.output_schema, f"{where}/output_schema", None),
            )
        hints = NameHints(known)
        for i, task in enumerate(spec.tasks):
            if task.workflow is not None:
                child = workflows.get((task.workflow.name, task.workflow.version))
                if child is None:
                    self.problems.append(_unknown_workflow(task, i, workflows))
                else:
                    self.children[task.name] = child
            iface = known.get(task.interface) if task.interface is not None else None
            if task.interface is not None and iface is None:
                self.problems.append(_unknown_interface(task, i, hints))
            self.schemas.setdefault(task.name, self._task_schemas(task, i, iface))

    def _task_schemas(
        self, task: TaskSpec, index: int, iface: InterfaceSchemas | None
    ) -> InterfaceSchemas:
        schemas = []
        for kind in ("input", "output"):
            inline = getattr(task, f"{kind}_schema")
            if inline is not None:
                where = f"/tasks/{index}/{kind}_schema"
                if self._valid(inline, where, task.name) is None:
                    self.invalid.add((task.name, kind))
                schemas.append(inline)
            else:
                schemas.append(getattr(iface, f"{kind}_schema") if iface else None)
        return InterfaceSchemas(input_schema=schemas[0], output_schema=schemas[1])

    def _valid(self, schema: Schema, location: str, task: str | None) -> Schema:
        """``schema`` when it is valid draft-07 (recording its problems otherwise, as ``None``)."""
        if schema is None:
            return None
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        found = self._checked.get(key)
        if found is None:
            found = self._checked[key] = schema_problems(schema, location="", task=None)
        self.problems += [replace(p, location=location + p.location, task=task) for p in found]
        return None if found else schema

    def usable(self, task: str, kind: str) -> Schema:
        """The schema checks use: a ``for_each`` task's output is the array of its instances'
        outputs."""
        if (task, kind) in self.invalid:
            return None
        schemas = self.schemas[task]
        if kind == "input":
            return schemas.input_schema
        output = schemas.output_schema
        if output is None and task in self.children and (task, "output") not in self.invalid:
            output = self.children[task].result_schema
        if task in self.mapped and output is not None:
            return {"type": "array", "items": output}
        return output


def _unknown_interface(task: TaskSpec, index: int, hints: NameHints) -> Problem:
    name = task.interface or ""
    return Problem(
        code="unknown_interface",
        task=task.name,
        location=f"/tasks/{index}/interface",
        message=f"task {task.name!r} names the interface {name!r}, which is neither stored nor"
        f" defined under the job's interfaces{hints.hint(name)}",
        expected=hints.expected(name),
        actual=name,
    )


def _unknown_workflow(
    task: TaskSpec, index: int, workflows: Mapping[tuple[str, int | None], DefinitionInfo]
) -> Problem:
    assert task.workflow is not None
    name, version = task.workflow.name, task.workflow.version
    known = sorted({n for n, _ in workflows})
    stored = name in known
    where = f"/tasks/{index}/workflow/" + ("version" if stored else "name")
    what = f"has no version {version}" if stored else "is not a stored workflow definition"
    return Problem(
        code="unknown_workflow",
        task=task.name,
        location=where,
        message=f"task {task.name!r} runs the workflow {name!r}, which {what}"
        " (store it with PUT /api/v1/workflows/{name} or jobqueue workflows apply)",
        actual=name if not stored else version,
    )


def _check_child_params(
    task: TaskSpec, index: int, graph: GraphResult, resolved: _Resolver
) -> tuple[list[Problem], list[Problem]]:
    """A sub-workflow task's ``workflow.params`` against the definition's ``params_schema``:
    its templates and literals, like a body against an input schema."""
    child = resolved.children.get(task.name)
    if child is None or task.workflow is None:
        return [], []
    where = f"/tasks/{index}/workflow/params"
    refs = [r for r in graph.references[index] if r.pointer.startswith(where)]
    ups = graph.upstream.get(task.name, ())
    errors, warnings = check_task(
        task=task.name,
        task_index=index,
        input_schema=child.params_schema,
        body=task.workflow.params,
        refs=refs,
        upstream_outputs={up: resolved.usable(up, "output") for up in ups},
    )
    body = f"/tasks/{index}/body"

    def moved(p: Problem) -> Problem:
        if p.location == body or p.location.startswith(body + "/"):
            return replace(p, location=where + p.location[len(body) :])
        return p

    return [moved(p) for p in errors], [moved(p) for p in warnings]


def _check_interfaces(
    spec: JobSpec, graph: GraphResult, resolved: _Resolver, broken: set[str | None]
) -> tuple[list[Problem], list[Problem]]:
    """``check_task`` for every task whose templates parse."""
    errors, warnings = _check_items(spec, graph, resolved, broken)
    for i, task in enumerate(spec.tasks):
        if task.name in broken:
            continue
        ups = graph.upstream.get(task.name, ())
        refs = graph.references[i]
        if task.workflow is not None:
            child_errors, child_warnings = _check_child_params(task, i, graph, resolved)
            errors += child_errors
            warnings += child_warnings
            where = f"/tasks/{i}/workflow/params"
            refs = [r for r in refs if not r.pointer.startswith(where)]
        found_errors, found_warnings = check_task(
            task=task.name,
            task_index=i,
            input_schema=resolved.usable(task.name, "input"),
            body=task.body,
            refs=refs,
            upstream_outputs={up: resolved.usable(up, "output") for up in ups},
        )
        errors += found_errors
        warnings += found_warnings
    return errors, warnings


_ITEM = frozenset({"item", "item_index"})


def _check_items(
    spec: JobSpec, graph: GraphResult, resolved: _Resolver, broken: set[str | None]
) -> tuple[list[Problem], list[Problem]]:
    """``for_each`` sources are arrays (``for_each_not_array``) and ``item`` reads follow their
    ``items`` schema; ``item`` outside a ``for_each`` task is an error."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for i, task in enumerate(spec.tasks):
        if task.name in broken:
            continue
        refs = task_variable_references(task, i, _ITEM)
        if not task.for_each:
            errors += [_item_outside(task, ref) for ref in refs]
            continue
        item = _item_schema(task, i, graph, resolved, errors)
        if item is None:
            continue
        found_errors, found_warnings = check_variables(
            task=task.name,
            task_index=i,
            input_schema=resolved.usable(task.name, "input"),
            body=task.body,
            refs=[r for r in refs if r.root == "item"],
            variables={"item": item},
        )
        errors += found_errors
        warnings += found_warnings
    return errors, warnings


def _item_schema(
    task: TaskSpec, index: int, graph: GraphResult, resolved: _Resolver, errors: list[Problem]
) -> Any:
    """The schema node of one item of a ``for_each`` that is exactly one ``tasks.X.output...``
    reference, when X's output schema tells it (``None`` otherwise)."""
    where = f"/tasks/{index}/for_each"
    refs = [r for r in graph.references[index] if r.pointer == where]
    if len(refs) != 1 or not refs[0].whole or refs[0].attr != "output":
        return None
    ref = refs[0]
    source = resolved.usable(ref.task, "output")
    if source is None:
        return None
    verdict, found = for_each_items(source, ref.path)
    if verdict == "not_array":
        text = f"tasks.{ref.task}.output" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in ref.path
        )
        errors.append(
            Problem(
                code="for_each_not_array",
                task=task.name,
                location=where,
                edge=f"{ref.task} -> {task.name}",
                message=f"for_each needs a list, but {text} is {found} by the output schema "
                f"of {ref.task!r}",
                expected="array",
                actual=found,
            )
        )
        return None
    return found if verdict == "items" else None


def _item_outside(task: TaskSpec, ref: VariableReference) -> Problem:
    return Problem(
        code="item_outside_for_each",
        task=task.name,
        location=ref.pointer,
        message=f"{ref.root} is defined only in a task with for_each; task {task.name!r} has none",
    )


def task_variable_references(
    task: TaskSpec, index: int, roots: frozenset[str]
) -> list[VariableReference]:
    """Every read of a variable in ``roots`` in a task's url, headers, params, body and ``when``."""
    base = f"/tasks/{index}"
    refs = find_variable_references(task.url, roots=roots, pointer=f"{base}/url")
    for field in ("headers", "params"):
        value = getattr(task, field)
        if value:
            refs += find_variable_references(value, roots=roots, pointer=f"{base}/{field}")
    if task.body is not None:
        refs += find_variable_references(
            task.body, roots=roots, pointer=f"{base}/body", body_root=f"{base}/body"
        )
    if task.when:
        refs += find_variable_references(
            task.when, roots=roots, pointer=f"{base}/when", condition=True
        )
    if task.workflow is not None and task.workflow.params:
        where = f"{base}/workflow/params"
        refs += find_variable_references(task.workflow.params, roots=roots, pointer=where)
    return refs


_PARAMS = frozenset({"params"})


def _check_params(
    spec: JobSpec, params_schema: Schema, resolved: _Resolver, broken: set[str | None]
) -> tuple[list[Problem], list[Problem]]:
    """``params.x`` reads against a definition's ``params_schema`` (itself valid draft-07)."""
    invalid = schema_problems(params_schema, location="/params_schema", task=None)
    if invalid:
        return invalid, []
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for i, task in enumerate(spec.tasks):
        if task.name in broken:
            continue
        found_errors, found_warnings = check_variables(
            task=task.name,
            task_index=i,
            input_schema=resolved.usable(task.name, "input") if spec.validate_interfaces else None,
            body=task.body,
            refs=task_variable_references(task, i, _PARAMS),
            variables={"params": params_schema},
        )
        errors += found_errors
        warnings += found_warnings
    return errors, warnings


def _into_single_call(problems: list[Problem]) -> list[Problem]:
    """Locations into the single-call document: ``/tasks/0/body/ids`` -> ``/body/ids``."""
    out = []
    for p in problems:
        loc = p.location
        if loc == _SINGLE_CALL_PREFIX or loc.startswith(_SINGLE_CALL_PREFIX + "/"):
            p = replace(p, location=loc[len(_SINGLE_CALL_PREFIX) :])
        out.append(p)
    return out
