"""Settling a job from the tasks that just ended: only their successors are looked at.

:func:`engine.dag.scheduler.advance` re-evaluates a whole job; a store that calls it for every
batch of outcomes pays for the whole job each time (quadratic in a wide job or a long chain).
:func:`settle_from` makes the same decisions (the same rule, ``_decide``) but visits only the
successors of the tasks that ended, and of the tasks it skips in turn. It is a generator so that
it stays pure: it yields the task ids whose state it needs and is sent back their current
``(status, skip_reason)``; the store answers from the database inside its transaction, a test
from a dict.

A task with many upstreams (the sink of a wide job) is not re-read whole on every batch: its
:class:`JobShape` keeps a hint of how far its upstreams were last seen ended, and only the
first one still running is read again (the "witness"). Before a task is queued every upstream
is read in the same transaction, so a stale hint can delay a decision to a later batch but
never make a wrong one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field

from engine.dag.scheduler import SKIP_UPSTREAM, SKIP_WHEN, TaskState, Transitions, _decide
from engine.states import TASK_TERMINAL, TaskStatus
from schemas.jobs import TriggerRule

#: a task's ``(status, skip_reason)``
State = tuple[TaskStatus, str | None]
#: what :func:`settle_from` yields (ids to read), is sent (their states) and returns
Steps = Generator[list[int], Mapping[int, State], Transitions]

_FIRST_CHUNK = 1  #: the witness alone first; then 2, 4, 8... upstreams a read


@dataclass
class JobShape:
    """What never changes about a job's graph, indexed by task id, plus the scan hints."""

    names: dict[int, str]
    parents: dict[int, tuple[int, ...]]
    children: dict[int, tuple[int, ...]]
    rules: dict[int, TriggerRule]
    #: task id -> how many of its upstreams (in ``parents`` order) were last seen ended
    hints: dict[int, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls, upstream: Mapping[int, tuple[str, ...]], names: Mapping[int, str],
        rules: Mapping[int, TriggerRule],
    ) -> JobShape:  # fmt: skip
        by_name = {name: task_id for task_id, name in names.items()}
        parents = {
            task_id: tuple(by_name[u] for u in ups if u in by_name)
            for task_id, ups in upstream.items()
        }
        children: dict[int, list[int]] = {task_id: [] for task_id in names}
        for task_id, ups in parents.items():
            for parent in ups:
                children[parent].append(task_id)
        return cls(
            names=dict(names),
            parents=parents,
            children={task_id: tuple(kids) for task_id, kids in children.items()},
            rules=dict(rules),
        )


def _ok(state: State) -> bool:
    """Counts as done-OK for ``all_success`` (the scheduler's rule)."""
    status, reason = state
    return status is TaskStatus.SUCCEEDED or (status is TaskStatus.SKIPPED and reason == SKIP_WHEN)


def settle_from(shape: JobShape, ended: Mapping[int, State]) -> Steps:
    """The pending successors of the tasks that ``ended`` (with the states they ended in),
    and of what that skips, that become ready or skipped. Yields lists of task ids to read;
    returns the :class:`Transitions` (without ``job_status``: whether the job ended is the
    store's question, answered by an index)."""
    out = Transitions()
    # an all_success successor of a failure is skipped at once, whatever its other upstreams
    known: dict[int, State] = dict(ended)
    todo: deque[int] = deque()
    queued: set[int] = set()

    def push_children(task_id: int) -> None:
        for child in shape.children.get(task_id, ()):
            if child not in queued:
                queued.add(child)
                todo.append(child)

    for task_id in ended:
        push_children(task_id)
    while todo:
        task_id = todo.popleft()
        queued.discard(task_id)
        yield from _read(known, [task_id])
        if known[task_id][0] is not TaskStatus.PENDING:
            continue
        decision = yield from _evaluate(shape, task_id, known)
        if decision == "queue":
            out.queue.append(task_id)
            known[task_id] = (TaskStatus.QUEUED, None)
        elif decision == "skip":
            out.skip.append(task_id)
            known[task_id] = (TaskStatus.SKIPPED, SKIP_UPSTREAM)
            push_children(task_id)
    return out


def _read(
    known: dict[int, State], ids: Iterable[int]
) -> Generator[list[int], Mapping[int, State], None]:
    """Ask for the states of ``ids`` not read yet in this settlement."""
    missing = [i for i in dict.fromkeys(ids) if i not in known]
    if missing:
        known.update((yield missing))


def _evaluate(
    shape: JobShape, task_id: int, known: dict[int, State]
) -> Generator[list[int], Mapping[int, State], str | None]:
    """``"queue"``, ``"skip"`` or ``None`` (keep waiting) for one pending task."""
    parents = shape.parents.get(task_id, ())
    rule = shape.rules[task_id]
    if rule is TriggerRule.ALL_SUCCESS and any(
        p in known and known[p][0] in TASK_TERMINAL and not _ok(known[p]) for p in parents
    ):
        return "skip"
    start = min(shape.hints.get(task_id, 0), len(parents))
    index, chunk = start, _FIRST_CHUNK
    while index < len(parents):
        batch = parents[index : index + chunk]
        yield from _read(known, batch)
        for parent in batch:
            state = known[parent]
            if state[0] not in TASK_TERMINAL:
                shape.hints[task_id] = index
                return None  # still waiting: ``parent`` is the witness
            if rule is TriggerRule.ALL_SUCCESS and not _ok(state):
                return "skip"
            index += 1
        chunk *= 2
    # Every upstream looks ended: confirm with all of them read in this transaction.
    yield from _read(known, parents[:start])
    ups = [_as_task_state(p, shape, known[p]) for p in parents]
    decision = _decide(_as_task_state(task_id, shape, known[task_id]), ups)
    shape.hints[task_id] = len(parents) if decision is not None else 0
    return decision


def _as_task_state(task_id: int, shape: JobShape, state: State) -> TaskState:
    return TaskState(
        id=task_id,
        name=shape.names[task_id],
        status=state[0],
        upstream=(),
        trigger_rule=shape.rules[task_id],
        skip_reason=state[1],
    )


def run_with(steps: Steps, states: Mapping[int, State]) -> Transitions:
    """Drive :func:`settle_from` from an in-memory map of states (tests, and the pure path)."""
    try:
        need = next(steps)
        while True:
            need = steps.send({i: states[i] for i in need})
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
