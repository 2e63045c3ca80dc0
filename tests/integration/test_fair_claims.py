"""Claims interleave jobs, and a job settles from the tasks that ended (store level).

A job of many ready tasks must not make a job submitted after it wait for all of them: a job
that has not started goes first among tasks of the same priority. Settling from the tasks that
ended must still promote fan-ins and skip what a failure cuts off, through the store, on each
backend (tests/pg runs this module again on PostgreSQL).

No call is made: tasks are claimed and ended by hand through the store.
"""

from __future__ import annotations

import time
from typing import Any

from engine import Engine
from engine.states import AttemptStatus, TaskStatus
from engine.store import Outcome
from tests.support.store import store_of, submit

NEVER_CALLED = "http://127.0.0.1:9/never-called"


def wide(n: int, priority: int = 0) -> dict[str, Any]:
    """``root -> m1..mn -> sink``."""
    middle = [f"m{i}" for i in range(1, n + 1)]
    tasks: list[dict[str, Any]] = [{"name": "root", "url": NEVER_CALLED}]
    tasks += [{"name": m, "url": NEVER_CALLED, "depends_on": ["root"]} for m in middle]
    tasks.append({"name": "sink", "url": NEVER_CALLED, "depends_on": middle})
    return {"name": "wide", "priority": priority, "tasks": tasks}


def ended(task: Any, status: TaskStatus = TaskStatus.SUCCEEDED) -> Outcome:
    failed = status is TaskStatus.FAILED
    return Outcome(
        task_id=task.id,
        job_id=task.job_id,
        attempt=task.attempt,
        solo=False,
        status=status,
        attempt_status=AttemptStatus.FAILED if failed else AttemptStatus.SUCCEEDED,
        finished_at=time.time(),
        response_status=500 if failed else 200,
        response_headers={},
        response_body={},
        duration_ms=1.0,
    )


async def statuses(engine: Engine, job_id: str) -> dict[str, str]:
    job = await engine.get_job(job_id)
    return {t["name"]: t["status"] for t in job["tasks"]}


async def test_a_job_submitted_behind_a_big_running_job_is_claimed_next(engine: Engine) -> None:
    store = store_of(engine)
    big = await submit(engine, wide(200))
    (root,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert await store.complete(ended(root))  # 200 tasks of the big job are now ready
    first = await store.claim(worker="w", limit=5, lease_seconds=60)
    assert {t.job_id for t in first} == {big}

    small = await submit(engine, {"url": NEVER_CALLED})
    (next_one,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert next_one.job_id == small


async def test_one_claim_takes_the_new_job_first_then_fills_from_the_started_one(
    engine: Engine,
) -> None:
    store = store_of(engine)
    big = await submit(engine, wide(50))
    (root,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert await store.complete(ended(root))
    small = await submit(engine, {"url": NEVER_CALLED})
    claimed = await store.claim(worker="w", limit=4, lease_seconds=60)
    assert [t.job_id for t in claimed] == [small, big, big, big]


async def test_a_new_job_of_lower_priority_does_not_jump_the_queue(engine: Engine) -> None:
    store = store_of(engine)
    big = await submit(engine, wide(20, priority=5))
    (root,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert await store.complete(ended(root))
    low = await submit(engine, {"url": NEVER_CALLED, "priority": 1})
    claimed = await store.claim(worker="w", limit=20, lease_seconds=60)
    assert {t.job_id for t in claimed} == {big}
    (last,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert last.job_id == low


async def test_a_wide_job_queues_its_sink_only_after_the_last_upstream(engine: Engine) -> None:
    store = store_of(engine)
    job = await submit(engine, wide(40))
    (root,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert await store.complete(ended(root))
    middle = await store.claim(worker="w", limit=40, lease_seconds=60)
    assert len(middle) == 40
    for task in middle[:-1]:
        assert await store.complete(ended(task))
        assert (await statuses(engine, job))["sink"] == "pending"
    assert await store.complete(ended(middle[-1]))
    assert (await statuses(engine, job))["sink"] == "queued"
    (sink,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert await store.complete(ended(sink))
    assert (await engine.get_job(job))["status"] == "succeeded"


async def test_a_failure_in_a_wide_job_skips_the_sink_and_ends_the_job(engine: Engine) -> None:
    store = store_of(engine)
    job = await submit(engine, wide(10))
    (root,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert await store.complete(ended(root))
    middle = await store.claim(worker="w", limit=10, lease_seconds=60)
    assert await store.complete(ended(middle[3], TaskStatus.FAILED))
    assert (await statuses(engine, job))["sink"] == "skipped"
    assert (await engine.get_job(job))["status"] == "running"  # the others still run
    for task in middle[:3] + middle[4:]:
        assert await store.complete(ended(task))
    assert (await engine.get_job(job))["status"] == "failed"


async def test_a_failure_skips_a_whole_chain_below_it(engine: Engine) -> None:
    store = store_of(engine)
    tasks = [{"name": "t0", "url": NEVER_CALLED}] + [
        {"name": f"t{i}", "url": NEVER_CALLED, "depends_on": [f"t{i - 1}"]} for i in range(1, 30)
    ]
    job = await submit(engine, {"name": "chain", "tasks": tasks})
    (first,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert await store.complete(ended(first))
    (second,) = await store.claim(worker="w", limit=1, lease_seconds=60)
    assert second.name == "t1"
    assert await store.complete(ended(second, TaskStatus.FAILED))
    seen = await statuses(engine, job)
    assert all(seen[f"t{i}"] == "skipped" for i in range(2, 30))
    assert (await engine.get_job(job))["status"] == "failed"
