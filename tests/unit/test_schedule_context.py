"""The ``schedule`` template root: which reads a job may make, and what renders."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.schedules.context import iso_utc, schedule_context, schedule_problems
from engine.templates import build_context, render_value
from schemas.jobs import parse_job_document

JOB = {
    "tasks": [
        {
            "name": "report",
            "method": "POST",
            "url": "https://example.org/{{ schedule.name }}",
            "body": {"day": "{{ schedule.fire_time[:10] }}", "n": "{{ params.n }}"},
            "when": "schedule.fire_time > '2027'",
        }
    ],
    "params": {"n": 1},
}


def test_a_schedules_job_may_read_its_fields() -> None:
    assert schedule_problems(parse_job_document(JOB), scheduled=True) == []


def test_any_other_job_may_not_read_schedule() -> None:
    problems = schedule_problems(parse_job_document(JOB), scheduled=False)
    assert [(p.code, p.location) for p in problems] == [
        ("unknown_variable", "/tasks/0/url"),
        ("unknown_variable", "/tasks/0/body/day"),
        ("unknown_variable", "/tasks/0/when"),
    ]


def test_an_unknown_field_of_schedule_is_named() -> None:
    job = {"url": "https://example.org/{{ schedule.fired_at }}"}
    (problem,) = schedule_problems(parse_job_document(job), scheduled=True)
    assert problem.actual == "fired_at" and problem.expected == ["fire_time", "name", "id"]


def test_a_job_that_never_reads_schedule_has_no_problem() -> None:
    job = {"url": "https://example.org/{{ params.x }}", "params": {"x": 1}}
    assert schedule_problems(parse_job_document(job), scheduled=False) == []


def test_the_context_renders_the_tick_in_utc() -> None:
    extra = schedule_context(
        schedule_id="sch_1",
        name="nightly",
        fire_time=datetime(2027, 4, 4, 1, 30, tzinfo=UTC).timestamp(),
    )
    context = build_context(params={}, job_id="j_1", job_name="nightly", upstream={}, extra=extra)
    rendered = render_value(
        {"at": "{{ schedule.fire_time }}", "day": "{{ schedule.fire_time[:10] }}"}, context
    )
    assert rendered == {"at": "2027-04-04T01:30:00Z", "day": "2027-04-04"}
    assert iso_utc(0) == "1970-01-01T00:00:00Z"
