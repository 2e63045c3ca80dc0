"""Sub-workflow tasks: start a child job for a task, and end the task when its child ends.

The task stays ``running`` without a lease (it holds no worker slot) while its child runs; the
transaction that ends the child job ends the task and settles the parent job, so a parent
advances exactly when its child finishes, in every process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.dag import sinks
from engine.states import AttemptStatus, JobStatus, TaskStatus
from engine.store import events
from engine.store.attempts import attempt_fence, fence
from engine.store.instances import account
from engine.store.records import ClaimedTask, Outcome
from engine.store.submit import NewJob, insert_jobs
from engine.store.tables import attempts, jobs, tasks
from engine.store.writer import WriteOp


class StartChildOp(WriteOp[bool]):
    """Insert the child job and let the task wait for it; fenced on the task's attempt (false
    when the task no longer runs that attempt: nothing is written)."""

    batchable = False

    def __init__(self, task: ClaimedTask, child: NewJob) -> None:
        self.task = task
        self.child = child

    async def apply(self, conn: AsyncConnection) -> bool:
        task = self.task
        live = (await conn.execute(select(tasks.c.id).where(fence(task.id, task.attempt)))).first()
        if live is None:
            return False
        await insert_jobs(conn, [self.child], set())
        await conn.execute(
            update(tasks)
            .where(fence(task.id, task.attempt))
            .values(child_job_id=self.child.job["id"], lease_owner=None, lease_expires_at=None)
        )
        self.wakes = True
        return True


async def child_result(conn: AsyncConnection, job_id: str) -> Any:
    """A job's result: its only sink's output, or ``{sink: output}`` for several sinks."""
    rows = (
        await conn.execute(
            select(tasks.c.name, tasks.c.upstream, tasks.c.response_body)
            .where(tasks.c.job_id == job_id, tasks.c.parent_id.is_(None))
            .order_by(tasks.c.position)
        )
    ).all()
    upstream = {r.name: tuple(r.upstream or ()) for r in rows}
    outputs = {r.name: r.response_body for r in rows}
    names = sinks(list(outputs), upstream)
    if len(names) == 1:
        return outputs[names[0]]
    return {name: outputs[name] for name in names}


async def end_waiting_tasks(
    conn: AsyncConnection,
    finished: Mapping[str, JobStatus],
    now: float,
    children: Sequence[Any] | None = None,
) -> set[str]:
    """End the sub-workflow tasks whose child jobs just ended; returns the parent jobs to settle.

    ``children``: the rows (``id``, ``parent_job_id``, ``parent_task``) of the ended jobs that
    are children, when the caller has them already. A child that did not succeed fails its
    task with ``subworkflow_failed``.
    """
    if children is None:
        children = (
            await conn.execute(
                select(jobs.c.id, jobs.c.parent_job_id, jobs.c.parent_task).where(
                    jobs.c.id.in_(list(finished)), jobs.c.parent_job_id.is_not(None)
                )
            )
        ).all()
    parents: set[str] = set()
    instances: list[Outcome] = []
    for child in children:
        task = (
            await conn.execute(
                select(tasks.c.id, tasks.c.attempt, tasks.c.parent_id).where(
                    tasks.c.job_id == child.parent_job_id,
                    tasks.c.name == child.parent_task,
                    tasks.c.child_job_id == child.id,
                    tasks.c.status == TaskStatus.RUNNING.value,
                )
            )
        ).first()
        if task is None:
            continue  # the parent task ended already (canceled, expired)
        status = finished[child.id]
        values: dict[str, Any] = {"finished_at": now, "tries": tasks.c.tries + 1}
        if status is JobStatus.SUCCEEDED:
            values |= {
                "status": TaskStatus.SUCCEEDED.value,
                "response_body": await child_result(conn, child.id),
            }
            attempt_status = AttemptStatus.SUCCEEDED
        else:
            values |= {
                "status": TaskStatus.FAILED.value,
                "error": {
                    "type": "subworkflow_failed",
                    "message": f"the child job {child.id} ended {status.value}",
                    "job_id": child.id,
                    "status": status.value,
                },
            }
            attempt_status = AttemptStatus.FAILED
        await conn.execute(update(tasks).where(fence(task.id, task.attempt)).values(values))
        await conn.execute(
            update(attempts)
            .where(attempt_fence(task.id, task.attempt))
            .values(status=attempt_status.value, finished_at=now, error=values.get("error"))
        )
        events.task_changed(
            conn,
            child.parent_job_id,
            child.parent_task,
            values["status"],
            task.attempt,
            now,
            error=values.get("error"),
        )
        if task.parent_id is None:
            parents.add(child.parent_job_id)
        else:  # an instance of a for_each task: counted on its parent task
            instances.append(
                Outcome(
                    task_id=task.id,
                    job_id=child.parent_job_id,
                    attempt=task.attempt,
                    solo=False,
                    status=TaskStatus(values["status"]),
                    attempt_status=attempt_status,
                    finished_at=now,
                    error=values.get("error"),
                    parent_id=task.parent_id,
                )
            )
    if instances:
        ended, _ = await account(conn, instances, now)
        parents |= ended
    return parents


async def active_children(conn: AsyncConnection, job_id: str) -> list[str]:
    active = [JobStatus.QUEUED.value, JobStatus.RUNNING.value]
    rows = await conn.execute(
        select(jobs.c.id).where(jobs.c.parent_job_id == job_id, jobs.c.status.in_(active))
    )
    return [r.id for r in rows]
