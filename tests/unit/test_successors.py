"""Settling from the tasks that ended makes exactly the decisions of the whole-job ``advance``.

The oracle is :func:`engine.dag.scheduler.advance`. Hypothesis draws a DAG with random trigger
rules, then plays a run: batches of running tasks end (succeeded, failed, skipped by their own
``when``, or canceled); after each batch both settle the job and must queue and skip the same
tasks. The scan hints of the shape live across batches, as in the store's cache.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.dag import SKIP_WHEN, TaskState, advance
from engine.dag.scheduler import Transitions
from engine.dag.successors import JobShape, State, run_with, settle_from
from engine.states import TaskStatus
from schemas.jobs import TriggerRule

ENDINGS = (
    (TaskStatus.SUCCEEDED, None),
    (TaskStatus.SUCCEEDED, None),
    (TaskStatus.FAILED, None),
    (TaskStatus.SKIPPED, SKIP_WHEN),
    (TaskStatus.CANCELED, None),
)


@st.composite
def jobs(draw: st.DrawFn) -> tuple[dict[int, tuple[str, ...]], dict[int, TriggerRule]]:
    n = draw(st.integers(min_value=1, max_value=14))
    upstream: dict[int, tuple[str, ...]] = {}
    rules: dict[int, TriggerRule] = {}
    for i in range(n):
        parents = draw(st.lists(st.integers(0, max(i - 1, 0)), max_size=4, unique=True))
        upstream[i + 100] = tuple(f"t{p}" for p in parents if p < i)
        rules[i + 100] = draw(st.sampled_from(list(TriggerRule)))
    return upstream, rules


def _oracle(
    states: dict[int, State], shape: JobShape, upstream: dict[int, tuple[str, ...]]
) -> Transitions:
    return advance(
        [
            TaskState(
                id=i,
                name=shape.names[i],
                status=s[0],
                upstream=upstream[i],
                trigger_rule=shape.rules[i],
                skip_reason=s[1],
            )
            for i, s in states.items()
        ]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job=jobs(), data=st.data())
def test_settling_from_ended_tasks_agrees_with_advance(
    job: tuple[dict[int, tuple[str, ...]], dict[int, TriggerRule]], data: st.DataObject
) -> None:
    upstream, rules = job
    names = {i: f"t{i - 100}" for i in upstream}
    shape = JobShape.build(upstream, names, rules)
    states: dict[int, State] = {
        i: ((TaskStatus.QUEUED if not upstream[i] else TaskStatus.PENDING), None) for i in upstream
    }
    for _ in range(40):
        active = [i for i, s in states.items() if s[0] is TaskStatus.QUEUED]
        if not active:
            break
        batch = data.draw(st.lists(st.sampled_from(active), min_size=1, unique=True))
        for task_id in batch:
            states[task_id] = data.draw(st.sampled_from(ENDINGS))
        expected = _oracle(states, shape, upstream)
        got = run_with(settle_from(shape, {i: states[i] for i in batch}), states)
        assert sorted(got.queue) == sorted(expected.queue)
        assert sorted(got.skip) == sorted(expected.skip)
        for task_id in expected.queue:
            states[task_id] = (TaskStatus.QUEUED, None)
        for task_id in expected.skip:
            states[task_id] = (TaskStatus.SKIPPED, "upstream")


def test_a_wide_sink_reads_only_its_witness_while_it_waits() -> None:
    """With 1,000 upstreams, each batch of outcomes reads a handful of rows, not the job."""
    n = 1000
    upstream = {0: ()} | {i: ("root",) for i in range(1, n + 1)}
    upstream[n + 1] = tuple(f"m{i}" for i in range(1, n + 1))
    names = {0: "root", n + 1: "sink"} | {i: f"m{i}" for i in range(1, n + 1)}
    shape = JobShape.build(upstream, names, dict.fromkeys(upstream, TriggerRule.ALL_SUCCESS))
    states: dict[int, State] = {i: (TaskStatus.QUEUED, None) for i in range(1, n + 1)}
    states[0] = (TaskStatus.SUCCEEDED, None)
    states[n + 1] = (TaskStatus.PENDING, None)
    reads: list[int] = []
    for task_id in range(1, n + 1):
        states[task_id] = (TaskStatus.SUCCEEDED, None)
        steps = settle_from(shape, {task_id: states[task_id]})
        try:
            need = next(steps)
            while True:
                reads.append(len(need))
                need = steps.send({i: states[i] for i in need})
        except StopIteration as stop:
            result = stop.value
        assert result.queue == ([n + 1] if task_id == n else [])
    # about two rows a batch (the sink and its witness), plus one full read before queueing
    assert sum(reads) < 6 * n
