"""A job's task graph at validation time, and its Mermaid picture for the API. No I/O.

:func:`build_graph` turns a :class:`JobSpec` into a ``networkx`` ``DiGraph`` (an edge ``X -> Y``
when ``Y`` depends on ``X``, explicitly through ``depends_on`` or implied by a ``tasks.X`` template
reference) and collects every structural problem at once. :func:`to_mermaid` draws a stored job.
Orders over the tasks (topological, sinks) live in :mod:`engine.dag.order`.
"""

from __future__ import annotations

import difflib
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import networkx as nx

from engine.errors import Problem
from engine.templates import Reference, find_references
from schemas.jobs import JobSpec, TaskSpec

#: above this many names, ``expected`` lists the closest names instead of all of them
_MAX_EXPECTED = 50
#: similarity searches per report (each costs up to milliseconds on 20,000 names)
_MAX_SEARCHES = 50


@dataclass(frozen=True, kw_only=True)
class GraphResult:
    graph: nx.DiGraph
    problems: list[Problem]
    #: every task's direct upstream tasks, explicit ``depends_on`` first, then implied ones
    upstream: dict[str, tuple[str, ...]]
    #: the template references of each task, by task index
    references: list[list[Reference]]


def task_references(task: TaskSpec, index: int) -> list[Reference]:
    """Every ``tasks.X`` reference of a task: url, headers, params, body and ``when``."""
    base = f"/tasks/{index}"
    refs = find_references(task.url, pointer=f"{base}/url")
    if task.headers:
        refs += find_references(task.headers, pointer=f"{base}/headers")
    if task.params:
        refs += find_references(task.params, pointer=f"{base}/params")
    if task.body is not None:
        refs += find_references(task.body, pointer=f"{base}/body", body_root=f"{base}/body")
    if task.when:
        refs += find_references(task.when, pointer=f"{base}/when", condition=True)
    if task.for_each:
        refs += find_references(task.for_each, pointer=f"{base}/for_each")
    if task.workflow is not None and task.workflow.params:
        where = f"{base}/workflow/params"
        refs += find_references(task.workflow.params, pointer=where, body_root=where)
    return refs


class NameHints:
    """What a report says about an unknown name: ``expected`` (every known name, or the closest
    ones when there are many) and a "did you mean" hint. Similarity searches are cached per name
    and capped, so a job full of unknown names cannot make validation slow."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = sorted(names)
        self._close: dict[str, list[str]] = {}

    def close(self, name: str) -> list[str]:
        found = self._close.get(name)
        if found is None:
            found = []
            if len(self._close) < _MAX_SEARCHES:
                found = difflib.get_close_matches(name, self.names, n=5, cutoff=0.6)
            self._close[name] = found
        return found

    def expected(self, name: str) -> list[str]:
        return list(self.names) if len(self.names) <= _MAX_EXPECTED else self.close(name)

    def hint(self, name: str) -> str:
        close = self.close(name)
        return f"; did you mean {close[0]!r}?" if close else ""


class _Builder:
    """Collects nodes, edges (with where each edge was declared) and problems."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.graph = nx.DiGraph()
        self.problems: list[Problem] = []
        self.origin: dict[tuple[str, str], str] = {}
        self.upstream: dict[str, tuple[str, ...]] = {}
        self.index: dict[str, int] = {}
        self.hints = NameHints(())

    def add_nodes(self) -> None:
        for i, task in enumerate(self.spec.tasks):
            first = self.index.setdefault(task.name, i)
            if first != i:
                self.problems.append(
                    Problem(
                        code="duplicate_task",
                        task=task.name,
                        location=f"/tasks/{i}/name",
                        message=f"task name {task.name!r} is already used by task {first}",
                        actual=task.name,
                    )
                )
            else:
                self.graph.add_node(task.name, index=i)
        self.hints = NameHints(self.index)

    def add_dependencies(self, i: int, task: TaskSpec, ups: dict[str, None]) -> None:
        for k, dep in enumerate(task.depends_on):
            where = f"/tasks/{i}/depends_on/{k}"
            if dep == task.name:
                message = f"task {dep!r} depends on itself"
                self.problems.append(
                    Problem(code="self_dependency", task=dep, location=where, message=message)
                )
            elif dep not in self.index:
                self.problems.append(
                    Problem(
                        code="unknown_dependency",
                        task=task.name,
                        location=where,
                        message=f"task {task.name!r} depends on {dep!r}, which is not a task"
                        f" of this job{self.hints.hint(dep)}",
                        expected=self.hints.expected(dep),
                        actual=dep,
                    )
                )
            else:
                ups.setdefault(dep, None)
                self.origin.setdefault((dep, task.name), where)

    def add_references(self, task: TaskSpec, refs: list[Reference], ups: dict[str, None]) -> None:
        seen: set[tuple[str, str]] = set()
        for ref in refs:
            key = (ref.task, ref.pointer)
            if ref.task in self.index and ref.task != task.name:
                ups.setdefault(ref.task, None)
                self.origin.setdefault((ref.task, task.name), ref.pointer)
            elif key not in seen:
                seen.add(key)
                self.problems.append(self._reference_problem(task, ref))

    def _reference_problem(self, task: TaskSpec, ref: Reference) -> Problem:
        if ref.task == task.name:
            return Problem(
                code="self_reference",
                task=task.name,
                location=ref.pointer,
                message=f"task {task.name!r} reads its own result (tasks.{ref.task})",
            )
        return Problem(
            code="unknown_task_reference",
            task=task.name,
            location=ref.pointer,
            edge=f"{ref.task} -> {task.name}",
            message=f"the template reads tasks.{ref.task}, but this job has no task named"
            f" {ref.task!r}{self.hints.hint(ref.task)}",
            expected=self.hints.expected(ref.task),
            actual=ref.task,
        )

    def add_cycles(self) -> None:
        cycles = []
        for component in nx.strongly_connected_components(self.graph):
            if len(component) > 1:
                first = min(component, key=self.index.__getitem__)
                cycles.append((self.index[first], self._cycle_problem(first, component)))
        self.problems.extend(problem for _, problem in sorted(cycles, key=lambda c: c[0]))

    def _cycle_problem(self, first: str, component: set[str]) -> Problem:
        cycle = _cycle_through(self.graph, first, component)
        message = "tasks depend on each other in a cycle: " + " -> ".join(cycle)
        if len(component) > len(cycle) - 1:
            others = sorted(component, key=self.index.__getitem__)
            message += f" (tasks {', '.join(others)} all lie on cycles)"
        closing = (cycle[-2], cycle[-1])
        return Problem(
            code="cycle",
            task=first,
            location=self.origin.get(closing, f"/tasks/{self.index[first]}"),
            edge=f"{closing[0]} -> {closing[1]}",
            message=message,
            actual=cycle,
        )


def build_graph(spec: JobSpec) -> GraphResult:
    """The task graph of a job and every structural problem in it (never only the first)."""
    builder = _Builder(spec)
    builder.add_nodes()
    references: list[list[Reference]] = []
    for i, task in enumerate(spec.tasks):
        refs = task_references(task, i)
        references.append(refs)
        ups: dict[str, None] = {}
        builder.add_dependencies(i, task, ups)
        builder.add_references(task, refs, ups)
        if builder.index[task.name] == i:
            builder.upstream[task.name] = tuple(ups)
            builder.graph.add_edges_from((up, task.name) for up in ups)
    builder.add_cycles()
    return GraphResult(
        graph=builder.graph,
        problems=builder.problems,
        upstream=builder.upstream,
        references=references,
    )


def _cycle_through(graph: nx.DiGraph, first: str, members: set[str]) -> list[str]:
    """The shortest cycle through ``first`` (breadth first), as ``[first, ..., first]``."""
    parent: dict[str, str | None] = {first: None}
    queue = deque([first])
    while queue:
        node = queue.popleft()
        for nxt in graph.successors(node):
            if nxt == first:
                path: list[str] = []
                step: str | None = node
                while step is not None:
                    path.append(step)
                    step = parent[step]
                return [*reversed(path), first]
            if nxt in members and nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return [first, first]  # unreachable for a strongly connected component


# --- the API's picture of a job ---------------------------------------------------------------


#: one Mermaid ``classDef`` per task status
STATUS_STYLES: dict[str, str] = {
    "pending": "fill:#f5f5f5,stroke:#9e9e9e,color:#424242",
    "queued": "fill:#e3f2fd,stroke:#1e88e5,color:#0d47a1",
    "running": "fill:#fff8e1,stroke:#f9a825,color:#e65100",
    "waiting": "fill:#ede7f6,stroke:#5e35b1,color:#311b92,stroke-dasharray:6 3",
    "succeeded": "fill:#e8f5e9,stroke:#43a047,color:#1b5e20",
    "failed": "fill:#ffebee,stroke:#e53935,color:#b71c1c",
    "canceled": "fill:#eceff1,stroke:#546e7a,color:#263238",
    "skipped": "fill:#fafafa,stroke:#bdbdbd,color:#757575,stroke-dasharray:4 2",
}
_CLASS_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def _status_class(status: object) -> str:
    value = status.value if isinstance(status, Enum) else status
    return _CLASS_UNSAFE.sub("_", str(value)) or "unknown"


def _label(text: str) -> str:
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def to_mermaid(nodes: Sequence[tuple[str, object]], edges: Iterable[tuple[str, str]]) -> str:
    """A Mermaid ``flowchart TD`` of the tasks, each styled by its status."""
    lines = ["flowchart TD"]
    ids: dict[str, str] = {}
    extra: list[str] = []
    for i, (name, status) in enumerate(nodes):
        ids[name] = f"n{i}"
        cls = _status_class(status)
        if cls not in STATUS_STYLES and cls not in extra:
            extra.append(cls)
        lines.append(f'    n{i}["{_label(name)} ({_label(cls)})"]:::{cls}')
    lines += [f"    {ids[a]} --> {ids[b]}" for a, b in edges if a in ids and b in ids]
    lines += [f"    classDef {cls} {style}" for cls, style in STATUS_STYLES.items()]
    lines += [f"    classDef {cls} fill:#ffffff,stroke:#000000" for cls in extra]
    return "\n".join(lines) + "\n"
