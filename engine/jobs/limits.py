"""Creation-time limits on a job document (``JobLimits``): how many tasks, how many and how
large headers, how long a URL. Each excess is a problem of the validation report, with its
location and the setting that sets the limit."""

from __future__ import annotations

from dataclasses import replace

from engine.config import JobLimits
from engine.errors import Problem
from engine.jsonpointer import join_pointer
from schemas.jobs import JobSpec, TaskSpec


def _problem(location: str, message: str, setting: str, limit: int, actual: int) -> Problem:
    return Problem(
        code="limit_exceeded",
        location=location,
        message=f"{message} (JOBQUEUE_{setting.upper()}={limit})",
        expected=limit,
        actual=actual,
    )


def _task_problems(task: TaskSpec, where: str, limits: JobLimits) -> list[Problem]:
    found: list[Problem] = []
    if len(task.url) > limits.max_url_length:
        found.append(
            _problem(
                f"{where}/url",
                f"the url is {len(task.url)} characters, more than {limits.max_url_length}",
                "max_url_length",
                limits.max_url_length,
                len(task.url),
            )
        )
    if len(task.headers) > limits.max_headers_per_task:
        found.append(
            _problem(
                f"{where}/headers",
                f"{len(task.headers)} headers, more than {limits.max_headers_per_task}",
                "max_headers_per_task",
                limits.max_headers_per_task,
                len(task.headers),
            )
        )
    for name, value in task.headers.items():
        size = len(name.encode()) + len(value.encode())
        if size > limits.max_header_bytes:
            found.append(
                _problem(
                    f"{where}/headers{join_pointer([name])}",
                    f"header {name!r} is {size} bytes, more than {limits.max_header_bytes}",
                    "max_header_bytes",
                    limits.max_header_bytes,
                    size,
                )
            )
    return found


def limit_problems(spec: JobSpec, limits: JobLimits, *, single_call: bool) -> list[Problem]:
    if len(spec.tasks) > limits.max_tasks_per_job:
        return [
            _problem(
                "/tasks",
                f"the job has {len(spec.tasks)} tasks, more than {limits.max_tasks_per_job}",
                "max_tasks_per_job",
                limits.max_tasks_per_job,
                len(spec.tasks),
            )
        ]
    found: list[Problem] = []
    for index, task in enumerate(spec.tasks):
        where = "" if single_call else f"/tasks/{index}"
        name = None if single_call else task.name
        found += [replace(p, task=name) for p in _task_problems(task, where, limits)]
    return found
