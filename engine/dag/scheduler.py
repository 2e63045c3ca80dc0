"""The pure rules of a job's progress: which pending tasks become ready or skipped, and when the
job has ended. No I/O: the store loads a job's task states, calls :func:`advance`, and writes the
transitions in the same transaction that recorded the change that caused them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.dag.order import topological_order
from engine.states import TASK_TERMINAL, JobStatus, TaskStatus
from schemas.jobs import TriggerRule

#: ``skip_reason`` values
SKIP_WHEN = "when"  #: the task's own ``when`` was false: counts as done-OK for all_success
SKIP_UPSTREAM = "upstream"  #: an upstream failure (or skip) means it cannot run


@dataclass(frozen=True, kw_only=True)
class TaskState:
    id: int
    name: str
    status: TaskStatus
    upstream: tuple[str, ...]
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    skip_reason: str | None = None


@dataclass(kw_only=True)
class Transitions:
    #: pending task ids that are now ready to run
    queue: list[int] = field(default_factory=list)
    #: pending task ids that can never run (an upstream failed)
    skip: list[int] = field(default_factory=list)
    #: the job's final status once every task has ended, else ``None``
    job_status: JobStatus | None = None


def _ok_for_all_success(state: TaskState) -> bool:
    if state.status is TaskStatus.SUCCEEDED:
        return True
    return state.status is TaskStatus.SKIPPED and state.skip_reason == SKIP_WHEN


def _decide(task: TaskState, ups: list[TaskState]) -> str | None:
    """``"queue"``, ``"skip"`` or ``None`` (keep waiting) for one pending task."""
    done = all(u.status in TASK_TERMINAL for u in ups)
    rule = task.trigger_rule
    if rule is TriggerRule.ALL_SUCCESS:
        if any(u.status in TASK_TERMINAL and not _ok_for_all_success(u) for u in ups):
            return "skip"
        return "queue" if done else None
    if not done:
        return None
    if rule is TriggerRule.ALL_DONE:
        return "queue"
    return "queue" if any(u.status is TaskStatus.SUCCEEDED for u in ups) else "skip"


def job_outcome(statuses: Sequence[TaskStatus]) -> JobStatus | None:
    """The job's final status when every task has ended; ``None`` while any is active."""
    if any(s not in TASK_TERMINAL for s in statuses):
        return None
    if any(s is TaskStatus.FAILED for s in statuses):
        return JobStatus.FAILED
    if any(s is TaskStatus.CANCELED for s in statuses):
        return JobStatus.CANCELED
    return JobStatus.SUCCEEDED


def advance(tasks: Sequence[TaskState]) -> Transitions:
    """Settle every pending task whose upstream outcome is known, in one topological pass."""
    out = Transitions()
    current: dict[str, TaskState] = {t.name: t for t in tasks}
    order = topological_order(list(current), {t.name: t.upstream for t in tasks})
    for task in (current[name] for name in order):
        if task.status is not TaskStatus.PENDING:
            continue
        ups = [current[u] for u in task.upstream if u in current]
        decision = _decide(task, ups)
        if decision == "queue":
            out.queue.append(task.id)
            current[task.name] = _with(task, TaskStatus.QUEUED, None)
        elif decision == "skip":
            out.skip.append(task.id)
            current[task.name] = _with(task, TaskStatus.SKIPPED, SKIP_UPSTREAM)
    out.job_status = job_outcome([t.status for t in current.values()])
    return out


def _with(task: TaskState, status: TaskStatus, skip_reason: str | None) -> TaskState:
    return TaskState(
        id=task.id,
        name=task.name,
        status=status,
        upstream=task.upstream,
        trigger_rule=task.trigger_rule,
        skip_reason=skip_reason,
    )
