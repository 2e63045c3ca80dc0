"""jobqueue_client against a real server: the REST app under uvicorn on 127.0.0.1 with its
embedded worker and a SQLite file, calling the real target server. Waits are ``wait()`` polls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jobqueue_client import (
    ApiError,
    AsyncJobQueue,
    Conflict,
    InvalidJob,
    JobQueue,
    NotFound,
    TransportError,
    WaitTimeout,
)
from tests.integration.target_server import TargetServer
from tests.support.api_server import ApiServer
from tests.support.processes import ROOT, free_port

LATER = "2999-01-01T00:00:00Z"  # scheduled_at that keeps a job queued for the whole test
WAIT = 20.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ApiServer]:
    with ApiServer(tmp_path / "api.db") as api:
        yield api


@pytest.fixture
def jq(server: ApiServer) -> Iterator[JobQueue]:
    with JobQueue(server.base_url) as client:
        yield client


def dag_yaml(target: TargetServer) -> str:
    """fetch -> echo: echo POSTs fetch's ``items`` (a list stays a list)."""
    return f"""\
name: fetch-and-echo
tags: [client]
tasks:
  - name: fetch
    url: {target.url("/json")}
  - name: echo
    method: POST
    url: {target.url("/echo")}
    body:
      items: "{{{{ tasks.fetch.output.items }}}}"
"""


BROKEN = {
    "name": "broken",
    "tasks": [
        {"name": "a", "url": "http://127.0.0.1:9/a", "depends_on": ["ghost"]},
        {"name": "b", "url": "http://127.0.0.1:9/b/{{ params.x "},
    ],
}


# --------------------------------------------------------------------------- sync client


def test_submit_wait_and_result_of_a_single_call(jq: JobQueue, target_server: TargetServer) -> None:
    job = jq.submit({"method": "GET", "url": target_server.url("/json"), "tags": ["one"]})

    result = jq.wait(job.job_id, timeout=WAIT)

    assert job.status == "queued" and not job.replayed
    assert result.job_id == job.job_id
    assert result.status == "succeeded" and result.succeeded
    assert result.response_status == 200
    assert result.response_body == {"ok": True, "items": [1, 2, 3]}
    assert result.tasks["main"].attempts == 1
    detail = jq.get(job.job_id)
    assert (detail.status, detail.method, detail.tags) == ("succeeded", "GET", ("one",))
    assert [t.name for t in detail.tasks] == ["main"]
    assert detail.finished_at is not None and detail.finished_at.tzinfo is not None
    (attempt,) = jq.attempts(job.job_id, "main")
    assert (attempt.attempt, attempt.status, attempt.response_status) == (1, "succeeded", 200)


def test_a_dag_from_yaml_text_passes_upstream_output_downstream(
    jq: JobQueue, target_server: TargetServer
) -> None:
    job = jq.submit(dag_yaml(target_server))

    result = jq.wait(job.job_id, timeout=WAIT)

    assert result.status == "succeeded", result
    assert set(result.tasks) == {"fetch", "echo"}
    assert result.tasks["echo"].response_body["body"] == {"items": [1, 2, 3]}
    assert result.response_body == result.tasks["echo"].response_body  # echo is the only sink
    detail = jq.get(job.job_id)
    assert detail.name == "fetch-and-echo"
    assert {t.name: t.depends_on for t in detail.tasks} == {"fetch": (), "echo": ("fetch",)}


def test_an_invalid_job_raises_invalid_job_with_each_error_and_its_location(
    jq: JobQueue,
) -> None:
    with pytest.raises(InvalidJob) as submitted:
        jq.submit(BROKEN)
    with pytest.raises(InvalidJob) as validated:
        jq.validate(BROKEN)

    for caught in (submitted.value, validated.value):
        assert caught.status_code == 422 and caught.code == "invalid_job"
        where = {e["code"]: e["location"] for e in caught.errors}
        assert where["unknown_dependency"] == "/tasks/0/depends_on/0"
        assert where["template_syntax"] == "/tasks/1/url"
        assert caught.warnings == []
    assert jq.list().items == ()


def test_validate_a_valid_job(jq: JobQueue, target_server: TargetServer) -> None:
    answer = jq.validate(dag_yaml(target_server))

    assert answer.valid is True
    assert [w["code"] for w in answer.warnings] == ["unchecked_reference"]
    assert jq.list().items == ()


def test_an_unknown_job_or_task_is_not_found(jq: JobQueue, target_server: TargetServer) -> None:
    unknown = "j_01M8KHA6FB5RQFAGTW7ACNW8A3"
    for call in (jq.get, jq.result, jq.cancel, jq.retry):
        with pytest.raises(NotFound) as caught:
            call(unknown)
        assert caught.value.code == "not_found" and unknown in caught.value.message
    job = jq.submit({"url": target_server.url("/json")})
    with pytest.raises(NotFound):
        jq.attempts(job.job_id, "no-such-task")


def test_cancel_or_retry_of_a_succeeded_job_is_a_conflict(
    jq: JobQueue, target_server: TargetServer
) -> None:
    job = jq.submit({"url": target_server.url("/json")})
    assert jq.wait(job.job_id, timeout=WAIT).succeeded

    with pytest.raises(Conflict) as canceled:
        jq.cancel(job.job_id)
    with pytest.raises(Conflict) as retried:
        jq.retry(job.job_id)

    assert canceled.value.status_code == 409 and "already ended" in canceled.value.message
    assert "only failed or canceled" in retried.value.message


def test_wait_times_out_on_a_queued_job_which_can_then_be_canceled(
    jq: JobQueue, target_server: TargetServer
) -> None:
    job = jq.submit({"url": target_server.url("/json"), "scheduled_at": LATER})

    with pytest.raises(WaitTimeout) as caught:
        jq.wait(job.job_id, timeout=0)
    canceled = jq.cancel(job.job_id)

    assert caught.value.job_id == job.job_id and caught.value.last.status == "queued"
    assert (canceled.job_id, canceled.status) == (job.job_id, "canceled")
    assert jq.wait(job.job_id, timeout=WAIT).status == "canceled"
    assert target_server.requests == []


def test_retry_reruns_a_failed_job(jq: JobQueue, target_server: TargetServer) -> None:
    job = jq.submit({"url": target_server.url("/flaky/client?fail=1"), "max_attempts": 1})
    assert jq.wait(job.job_id, timeout=WAIT).status == "failed"

    retried = jq.retry(job.job_id)
    result = jq.wait(job.job_id, timeout=WAIT)

    assert (retried.job_id, retried.status) == (job.job_id, "running")
    assert result.status == "succeeded"
    assert result.response_body == {"key": "client", "count": 2}
    attempts = jq.attempts(job.job_id, "main")
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "succeeded")]
    assert attempts[0].response_status == 503


def test_list_pages_with_a_cursor(jq: JobQueue, target_server: TargetServer) -> None:
    url = target_server.url("/json")
    ids = [
        jq.submit({"url": url, "tags": ["paged"], "scheduled_at": LATER}).job_id for _ in "abcde"
    ]
    other = jq.submit({"url": url, "tags": ["other"], "scheduled_at": LATER}).job_id

    first = jq.list(tag="paged", limit=2)
    second = jq.list(tag="paged", limit=2, cursor=first.next_cursor)
    third = jq.list(tag="paged", limit=2, cursor=second.next_cursor)

    pages = [first, second, third]
    assert [len(p.items) for p in pages] == [2, 2, 1]
    assert first.next_cursor and second.next_cursor and third.next_cursor is None
    listed = [item.job_id for page in pages for item in page.items]
    assert sorted(listed) == sorted(ids)
    assert {(i.status, i.tags) for p in pages for i in p.items} == {("queued", ("paged",))}
    assert [j.job_id for j in jq.iter_jobs(tag="paged", page_size=2)] == listed
    assert {j.job_id for j in jq.iter_jobs(status="queued", page_size=4)} == {*ids, other}
    assert list(jq.iter_jobs(status="succeeded")) == []


def test_an_idempotency_key_replays_the_first_job(
    jq: JobQueue, target_server: TargetServer
) -> None:
    document = {"url": target_server.url("/json")}

    first = jq.submit(document, idempotency_key="order-1")
    jq.wait(first.job_id, timeout=WAIT)
    again = jq.submit(document, idempotency_key="order-1")
    with pytest.raises(ApiError) as reused:
        jq.submit({"url": target_server.url("/text")}, idempotency_key="order-1")

    assert not first.replayed
    assert again.replayed and again.job_id == first.job_id and again.status == "succeeded"
    assert type(reused.value) is ApiError
    assert (reused.value.status_code, reused.value.code) == (422, "idempotency_key_reused")
    assert [j.job_id for j in jq.iter_jobs()] == [first.job_id]


def test_no_server_is_a_transport_error() -> None:
    with (
        JobQueue(f"http://127.0.0.1:{free_port()}", timeout=5) as jq,
        pytest.raises(TransportError),
    ):
        jq.get("j_01M8KHA6FB5RQFAGTW7ACNW8A3")


# --------------------------------------------------------------------------- async client


async def test_async_client_runs_a_dag_to_its_result(
    server: ApiServer, target_server: TargetServer
) -> None:
    document: dict[str, Any] = {
        "name": "async-dag",
        "tasks": [
            {"name": "fetch", "url": target_server.url("/json")},
            {
                "name": "echo",
                "method": "POST",
                "url": target_server.url("/echo"),
                "body": {"first": "{{ tasks.fetch.output.items[0] }}"},
            },
        ],
    }
    async with AsyncJobQueue(server.base_url) as aq:
        job = await aq.submit(document, idempotency_key="async-1")
        result = await aq.wait(job.job_id, timeout=WAIT, poll_interval=0.05)
        replayed = await aq.submit(document, idempotency_key="async-1")
        detail = await aq.get(job.job_id)
        attempts = await aq.attempts(job.job_id, "echo")
        listed = [item.job_id async for item in aq.iter_jobs(name="async-dag", page_size=1)]

    assert result.status == "succeeded"
    assert result.tasks["echo"].response_body["body"] == {"first": 1}
    assert replayed.replayed and replayed.job_id == job.job_id
    assert [t.status for t in detail.tasks] == ["succeeded", "succeeded"]
    assert [a.status for a in attempts] == ["succeeded"]
    assert listed == [job.job_id]


async def test_async_client_errors_and_control(
    server: ApiServer, target_server: TargetServer
) -> None:
    async with AsyncJobQueue(server.base_url) as aq:
        with pytest.raises(InvalidJob) as invalid:
            await aq.submit(BROKEN)
        with pytest.raises(NotFound):
            await aq.get("j_01M8KHA6FB5RQFAGTW7ACNW8A3")
        queued = await aq.submit({"url": target_server.url("/json"), "scheduled_at": LATER})
        with pytest.raises(WaitTimeout):
            await aq.wait(queued.job_id, timeout=0)
        canceled = await aq.cancel(queued.job_id)
        with pytest.raises(Conflict):
            await aq.cancel(queued.job_id)
        retried = await aq.retry(queued.job_id)  # a retry queues the canceled task at once
        result = await aq.wait(queued.job_id, timeout=WAIT, poll_interval=0.05)
        page = await aq.list(status="succeeded", limit=10)

    assert {e["location"] for e in invalid.value.errors} >= {"/tasks/0/depends_on/0"}
    assert canceled.status == "canceled"
    assert retried.status == "running"
    assert result.response_body == {"ok": True, "items": [1, 2, 3]}
    assert [item.job_id for item in page.items] == [queued.job_id]


# --------------------------------------------------------------------------- README


def readme_snippet() -> str:
    """The first ``python`` block of the README's "From Python" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## From Python\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "README.md: no python block under '## From Python'"
    return found.group(1)


def test_the_readme_example_runs(
    server: ApiServer, target_server: TargetServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = readme_snippet()
    substitutions = {
        '"http://127.0.0.1:8000"': repr(server.base_url),
        '"https://example.org/"': repr(target_server.url("/json")),
    }
    for old, new in substitutions.items():
        assert code.count(old) == 1, f"the README example no longer contains {old}"
        code = code.replace(old, new)

    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})

    assert capsys.readouterr().out.split() == ["succeeded", "200"]
    assert [r.path for r in target_server.requests] == ["/json"]
