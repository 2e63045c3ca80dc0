"""The pure progress rules: promotion, skipping, trigger rules, the job's final status."""

from __future__ import annotations

from engine.dag.scheduler import SKIP_UPSTREAM, SKIP_WHEN, TaskState, advance, job_outcome
from engine.states import JobStatus, TaskStatus
from schemas.jobs import TriggerRule

S = TaskStatus


def t(
    i: int,
    name: str,
    status: TaskStatus,
    ups: tuple[str, ...] = (),
    rule: TriggerRule = TriggerRule.ALL_SUCCESS,
    skip: str | None = None,
) -> TaskState:
    return TaskState(
        id=i, name=name, status=status, upstream=ups, trigger_rule=rule, skip_reason=skip
    )


def test_fan_in_waits_for_every_upstream() -> None:
    tasks = [t(1, "a", S.SUCCEEDED), t(2, "b", S.RUNNING), t(3, "c", S.PENDING, ("a", "b"))]
    result = advance(tasks)
    assert result.queue == [] and result.skip == [] and result.job_status is None


def test_fan_in_queues_once_all_succeeded() -> None:
    tasks = [t(1, "a", S.SUCCEEDED), t(2, "b", S.SUCCEEDED), t(3, "c", S.PENDING, ("a", "b"))]
    assert advance(tasks).queue == [3]


def test_failure_skips_everything_downstream_transitively_in_one_pass() -> None:
    chain = [t(1, "a", S.FAILED)] + [
        t(i, f"n{i}", S.PENDING, (f"n{i - 1}" if i > 2 else "a",)) for i in range(2, 200)
    ]
    result = advance(list(reversed(chain)))
    assert sorted(result.skip) == list(range(2, 200))
    assert result.job_status is JobStatus.FAILED


def test_failure_does_not_stop_independent_branch() -> None:
    tasks = [
        t(1, "a", S.FAILED),
        t(2, "b", S.RUNNING),
        t(3, "after_a", S.PENDING, ("a",)),
        t(4, "after_b", S.PENDING, ("b",)),
    ]
    result = advance(tasks)
    assert result.skip == [3]
    assert result.queue == []
    assert result.job_status is None


def test_skipped_by_when_counts_as_done_for_all_success() -> None:
    tasks = [t(1, "a", S.SKIPPED, skip=SKIP_WHEN), t(2, "b", S.PENDING, ("a",))]
    assert advance(tasks).queue == [2]


def test_skipped_by_upstream_failure_propagates() -> None:
    tasks = [t(1, "a", S.SKIPPED, skip=SKIP_UPSTREAM), t(2, "b", S.PENDING, ("a",))]
    assert advance(tasks).skip == [2]


def test_all_done_runs_after_a_failure() -> None:
    tasks = [t(1, "a", S.FAILED), t(2, "cleanup", S.PENDING, ("a",), TriggerRule.ALL_DONE)]
    result = advance(tasks)
    assert result.queue == [2]
    assert result.job_status is None


def test_one_success_needs_one_success_once_all_ended() -> None:
    base = [t(1, "a", S.FAILED), t(2, "b", S.SUCCEEDED)]
    task = t(3, "c", S.PENDING, ("a", "b"), TriggerRule.ONE_SUCCESS)
    assert advance([*base, task]).queue == [3]
    none_ok = [t(1, "a", S.FAILED), t(2, "b", S.FAILED), task]
    assert advance(none_ok).skip == [3]
    waiting = [t(1, "a", S.RUNNING), t(2, "b", S.SUCCEEDED), task]
    assert advance(waiting).queue == []


def test_job_outcome() -> None:
    assert job_outcome([S.SUCCEEDED, S.SKIPPED]) is JobStatus.SUCCEEDED
    assert job_outcome([S.SUCCEEDED, S.FAILED, S.SKIPPED]) is JobStatus.FAILED
    assert job_outcome([S.CANCELED, S.SUCCEEDED]) is JobStatus.CANCELED
    assert job_outcome([S.SUCCEEDED, S.QUEUED]) is None


def test_job_outcome_of_a_single_task() -> None:
    """A one-task job ends as its task's attempt ended (the store's solo fast path)."""
    assert job_outcome([S.SUCCEEDED]) is JobStatus.SUCCEEDED
    assert job_outcome([S.SKIPPED]) is JobStatus.SUCCEEDED  # its ``when`` was false
    assert job_outcome([S.FAILED]) is JobStatus.FAILED
    assert job_outcome([S.CANCELED]) is JobStatus.CANCELED
    assert job_outcome([S.QUEUED]) is None  # a retry is due: the job goes on
