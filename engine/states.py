"""Job and task states as data, and the transitions the engine allows between them."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  #: accepted, no task has started yet
    RUNNING = "running"  #: at least one task was claimed and the job has not ended
    SUCCEEDED = "succeeded"  #: every task succeeded or was skipped on purpose
    FAILED = "failed"  #: a task failed and nothing is left running
    CANCELED = "canceled"  #: canceled by a user


class TaskStatus(StrEnum):
    PENDING = "pending"  #: waiting for upstream tasks
    QUEUED = "queued"  #: ready; waiting for a worker (or for next_attempt_at)
    RUNNING = "running"  #: claimed by a worker that holds a lease
    #: a callback task whose call was answered: it waits for ``POST /callbacks/{token}``,
    #: holding no worker slot and no lease
    WAITING = "waiting"
    SUCCEEDED = "succeeded"  #: the call answered and its output passed validation
    FAILED = "failed"  #: no attempts left, expired, invalid input/output or lost too often
    CANCELED = "canceled"  #: the job was canceled before this task ended
    SKIPPED = "skipped"  #: its ``when`` was false, or an upstream failure means it cannot run


class AttemptStatus(StrEnum):
    RUNNING = "running"  #: the HTTP call is in flight
    WAITING = "waiting"  #: the call was answered; the attempt ends with its callback
    SUCCEEDED = "succeeded"  #: the task succeeded with this attempt
    FAILED = "failed"  #: the call failed (status, network, timeout, validation)
    LOST = "lost"  #: the worker's lease expired; the task went back to the queue
    INTERRUPTED = "interrupted"  #: handed back at shutdown, not counted against max_attempts
    CANCELED = "canceled"  #: interrupted by a cancel
    EXPIRED = "expired"  #: interrupted because the task's ttl ran out
    SKIPPED = "skipped"  #: the task's ``when`` was false: no call was made
    CALLBACK_TIMEOUT = "callback_timeout"  #: no callback came within ``callback.timeout_sec``


JOB_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
TASK_TERMINAL = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.SKIPPED}
)
#: statuses ``POST /jobs/{id}/retry`` puts back to work
TASK_RETRYABLE = frozenset({TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELED})
