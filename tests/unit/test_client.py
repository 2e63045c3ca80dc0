"""jobqueue_client against httpx.MockTransport: requests it builds, answers it decodes, and the
one mapping from error statuses to exceptions, for the sync and the async client alike."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import jobqueue_client
from jobqueue_client import (
    ApiError,
    AsyncJobQueue,
    Conflict,
    InvalidJob,
    JobQueue,
    JobQueueClientError,
    NotFound,
    TooLarge,
    TransportError,
    Unauthorized,
    UnexpectedResponse,
    WaitTimeout,
)

BASE = "http://jobqueue.test"
JOB_ID = "j_01M8KHA6FB5RQFAGTW7ACNW8A3"
MODES = pytest.mark.parametrize("mode", ["sync", "async"])

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a list and keeps every request."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


async def call(mode: str, handler: Handler, method: str, *args: Any, **kwargs: Any) -> Any:
    """``method(*args, **kwargs)`` on a JobQueue or an AsyncJobQueue over ``handler``."""
    transport = httpx.MockTransport(handler)
    if mode == "sync":
        with JobQueue(BASE, api_key=kwargs.pop("api_key", None), transport=transport) as jq:
            return getattr(jq, method)(*args, **kwargs)
    async with AsyncJobQueue(BASE, api_key=kwargs.pop("api_key", None), transport=transport) as aq:
        return await getattr(aq, method)(*args, **kwargs)


def answer(status: int, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def result_doc(status: str, **extra: Any) -> dict[str, Any]:
    task = {
        "status": status,
        "response_status": 200 if status == "succeeded" else None,
        "response_headers": {"content-type": "application/json"},
        "response_body": {"ok": True},
        "response_truncated": False,
        "error": None,
        "duration_ms": 4.5,
        "attempts": 1,
    }
    top = {k: v for k, v in task.items() if k not in ("status", "attempts")}
    return {"job_id": JOB_ID, "status": status, **top, "tasks": {"main": task}, **extra}


# --------------------------------------------------------------------------- error mapping

REPORT = {
    "code": "invalid_job",
    "errors": [
        {
            "code": "unknown_dependency",
            "task": "a",
            "location": "/tasks/0/depends_on/0",
            "message": "task 'a' depends on 'b', which is not a task of this job",
        }
    ],
    "warnings": [{"code": "unchecked_reference", "location": "/tasks/1/url", "message": "m"}],
}


@MODES
@pytest.mark.parametrize(
    ("status", "detail", "cls", "code"),
    [
        (422, REPORT, InvalidJob, "invalid_job"),
        (422, {"code": "invalid_request", "errors": []}, ApiError, "invalid_request"),
        (422, {"code": "idempotency_key_reused"}, ApiError, "idempotency_key_reused"),
        (404, {"code": "not_found", "message": "job j_x not found"}, NotFound, "not_found"),
        (409, {"code": "conflict", "message": "already ended"}, Conflict, "conflict"),
        (413, {"code": "too_large", "message": "body too large"}, TooLarge, "too_large"),
        (401, {"code": "unauthorized", "message": "no key"}, Unauthorized, "unauthorized"),
        (403, {"code": "forbidden", "message": "not yours"}, Unauthorized, "forbidden"),
        (415, {"code": "unsupported_media_type"}, ApiError, "unsupported_media_type"),
        (405, "Method Not Allowed", ApiError, None),
        (404, "Not Found", NotFound, None),
    ],
)
async def test_each_error_status_raises_its_exception(
    mode: str, status: int, detail: Any, cls: type[ApiError], code: str | None
) -> None:
    handler = Recorder(answer(status, {"detail": detail}))

    with pytest.raises(ApiError) as caught:
        await call(mode, handler, "get", JOB_ID)

    assert type(caught.value) is cls
    assert isinstance(caught.value, JobQueueClientError)
    assert caught.value.status_code == status
    assert caught.value.detail == detail
    assert caught.value.code == code
    assert str(status) in str(caught.value)


@MODES
async def test_invalid_job_carries_errors_and_warnings_as_lists_of_dicts(mode: str) -> None:
    handler = Recorder(answer(422, {"detail": REPORT}))

    with pytest.raises(InvalidJob) as caught:
        await call(mode, handler, "submit", {"tasks": []})

    assert caught.value.errors == REPORT["errors"]
    assert caught.value.warnings == REPORT["warnings"]
    assert caught.value.errors[0]["location"] == "/tasks/0/depends_on/0"
    assert "unknown_dependency at /tasks/0/depends_on/0" in str(caught.value)


@MODES
async def test_an_error_answer_that_is_not_json_keeps_its_text(mode: str) -> None:
    handler = Recorder(httpx.Response(502, text="<html>bad gateway</html>"))

    with pytest.raises(ApiError) as caught:
        await call(mode, handler, "result", JOB_ID)

    assert type(caught.value) is ApiError
    assert caught.value.status_code == 502
    assert caught.value.detail == "<html>bad gateway</html>"
    assert caught.value.code is None


@MODES
async def test_no_answer_is_a_transport_error(mode: str) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TransportError) as caught:
        await call(mode, refuse, "get", JOB_ID)

    assert isinstance(caught.value, JobQueueClientError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert BASE in str(caught.value)


@MODES
@pytest.mark.parametrize(
    "body",
    [{"text": "<html>a proxy page</html>"}, {"json": ["a", "list"]}, {"json": {"job_id": JOB_ID}}],
    ids=["html", "json-list", "missing-status"],
)
async def test_a_success_without_the_documented_json_is_unexpected(
    mode: str, body: dict[str, Any]
) -> None:
    with pytest.raises(UnexpectedResponse) as caught:
        await call(mode, Recorder(httpx.Response(200, **body)), "get", JOB_ID)

    assert caught.value.status_code == 200
    assert isinstance(caught.value, JobQueueClientError)


def test_the_exception_tree() -> None:
    for cls in (InvalidJob, NotFound, Conflict, TooLarge, Unauthorized):
        assert issubclass(cls, ApiError)
    for cls in (ApiError, TransportError, UnexpectedResponse, WaitTimeout):
        assert issubclass(cls, JobQueueClientError)
    assert issubclass(JobQueueClientError, Exception)


# --------------------------------------------------------------------------- requests


@MODES
async def test_submit_a_mapping_sends_json(mode: str) -> None:
    handler = Recorder(answer(201, {"job_id": JOB_ID, "status": "queued"}))
    document = {"method": "POST", "url": "https://example.org/é", "body": {"n": 1}}

    job = await call(mode, handler, "submit", document)

    request = handler.last
    assert (request.method, request.url.path) == ("POST", "/api/v1/jobs")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == document
    assert "idempotency-key" not in request.headers
    assert "authorization" not in request.headers
    assert (job.job_id, job.status, job.replayed, job.warnings) == (JOB_ID, "queued", False, ())


@MODES
async def test_submit_yaml_text_with_an_idempotency_key_and_an_api_key(mode: str) -> None:
    warning = {"code": "unchecked_reference", "location": "/tasks/1/body/ids", "message": "m"}
    handler = Recorder(
        answer(
            201,
            {"job_id": JOB_ID, "status": "succeeded", "warnings": [warning]},
            **{"Idempotent-Replayed": "true"},
        )
    )
    text = "name: x\ntasks:\n  - name: a\n    url: https://example.org/\n"

    job = await call(mode, handler, "submit", text, idempotency_key="order-1", api_key="s3cret")

    request = handler.last
    assert request.headers["content-type"] == "application/yaml"
    assert request.content == text.encode()
    assert request.headers["idempotency-key"] == "order-1"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert job.replayed is True
    assert job.status == "succeeded"
    assert job.warnings == (warning,)


@MODES
async def test_submit_refuses_what_is_not_a_job_document(mode: str) -> None:
    handler = Recorder(answer(201, {"job_id": JOB_ID, "status": "queued"}))

    with pytest.raises(TypeError):
        await call(mode, handler, "submit", [{"url": "https://example.org/"}])
    with pytest.raises(ValueError):
        await call(mode, handler, "submit", {"url": "https://example.org/", "n": float("nan")})
    assert handler.requests == []


@MODES
@pytest.mark.parametrize(
    ("method", "args", "verb", "path", "body"),
    [
        ("get", (JOB_ID,), "GET", f"/api/v1/jobs/{JOB_ID}", {"job_id": JOB_ID, "status": "x"}),
        ("result", (JOB_ID,), "GET", f"/api/v1/jobs/{JOB_ID}/result", result_doc("running")),
        (
            "attempts",
            (JOB_ID, "fetch data"),
            "GET",
            f"/api/v1/jobs/{JOB_ID}/tasks/fetch%20data/attempts",
            {"job_id": JOB_ID, "task": "fetch data", "attempts": []},
        ),
        (
            "cancel",
            (JOB_ID,),
            "POST",
            f"/api/v1/jobs/{JOB_ID}/cancel",
            {"job_id": JOB_ID, "status": "canceled"},
        ),
        (
            "retry",
            (JOB_ID,),
            "POST",
            f"/api/v1/jobs/{JOB_ID}/retry",
            {"job_id": JOB_ID, "status": "running"},
        ),
        ("delete", (JOB_ID,), "DELETE", f"/api/v1/jobs/{JOB_ID}", None),
        (
            "validate",
            ({"url": "https://example.org/"},),
            "POST",
            "/api/v1/jobs/validate",
            {"valid": True, "warnings": []},
        ),
        ("get", ("a/b?c",), "GET", "/api/v1/jobs/a%2Fb%3Fc", {"job_id": "a/b?c", "status": "x"}),
    ],
)
async def test_each_method_calls_its_endpoint(
    mode: str, method: str, args: tuple[Any, ...], verb: str, path: str, body: Any
) -> None:
    handler = Recorder(httpx.Response(204) if body is None else answer(200, body))

    await call(mode, handler, method, *args)

    assert handler.last.method == verb
    assert handler.last.url.raw_path.decode() == path


@pytest.mark.parametrize("base", [BASE, BASE + "/", BASE + "/api/v1", BASE + "/api/v1/"])
def test_the_base_url_may_name_the_api_root_or_not(base: str) -> None:
    handler = Recorder(answer(200, {"items": [], "next_cursor": None}))

    with JobQueue(base, transport=httpx.MockTransport(handler)) as jq:
        jq.list()

    assert str(handler.last.url) == f"{BASE}/api/v1/jobs"


@MODES
async def test_list_sends_the_filters_given_and_decodes_the_page(mode: str) -> None:
    item = {
        "job_id": JOB_ID,
        "name": "nightly",
        "status": "failed",
        "priority": 5,
        "tags": ["demo"],
        "n_tasks": 4,
        "scheduled_at": None,
        "created_at": "2026-11-29T11:33:49.746Z",
        "started_at": "2026-11-29T11:33:49.761Z",
        "finished_at": None,
    }
    handler = Recorder(answer(200, {"items": [item], "next_cursor": "abc"}))
    after = datetime(2026, 11, 1, tzinfo=UTC)

    page = await call(
        mode,
        handler,
        "list",
        status="failed",
        tag="demo",
        limit=2,
        cursor="c0",
        created_after=after,
    )

    assert dict(handler.last.url.params) == {
        "status": "failed",
        "tag": "demo",
        "limit": "2",
        "cursor": "c0",
        "created_after": "2026-11-01T00:00:00+00:00",
    }
    assert page.next_cursor == "abc"
    (summary,) = page.items
    assert summary.job_id == JOB_ID and summary.tags == ("demo",) and summary.n_tasks == 4
    assert summary.created_at == datetime(2026, 11, 29, 11, 33, 49, 746000, tzinfo=UTC)
    assert summary.finished_at is None
    assert page.raw == {"items": [item], "next_cursor": "abc"}


@MODES
async def test_list_refuses_a_time_without_a_zone(mode: str) -> None:
    handler = Recorder(answer(200, {"items": [], "next_cursor": None}))

    with pytest.raises(ValueError, match="time zone"):
        await call(mode, handler, "list", created_before=datetime(2026, 1, 1))


def _pages(count: int, per_page: int) -> Handler:
    """GET /jobs over ``count`` jobs, ``per_page`` at a time, the cursor being an offset."""

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params.get("cursor", "0"))
        limit = int(request.url.params["limit"])
        assert limit == per_page
        end = min(start + limit, count)
        items = [{"job_id": f"j_{i}", "status": "queued"} for i in range(start, end)]
        return answer(200, {"items": items, "next_cursor": str(end) if end < count else None})

    return handler


def test_iter_jobs_follows_the_cursor_to_the_last_page() -> None:
    with JobQueue(BASE, transport=httpx.MockTransport(_pages(5, 2))) as jq:
        ids = [job.job_id for job in jq.iter_jobs(page_size=2, status="queued")]

    assert ids == [f"j_{i}" for i in range(5)]


async def test_async_iter_jobs_follows_the_cursor_to_the_last_page() -> None:
    async with AsyncJobQueue(BASE, transport=httpx.MockTransport(_pages(5, 2))) as aq:
        ids = [job.job_id async for job in aq.iter_jobs(page_size=2)]

    assert ids == [f"j_{i}" for i in range(5)]


# --------------------------------------------------------------------------- wait


@MODES
async def test_wait_polls_the_result_until_the_job_ends(mode: str) -> None:
    handler = Recorder(
        answer(200, result_doc("queued")),
        answer(200, result_doc("running")),
        answer(200, result_doc("succeeded")),
    )

    result = await call(mode, handler, "wait", JOB_ID, timeout=30, poll_interval=0.001)

    assert len(handler.requests) == 3
    assert {r.url.path for r in handler.requests} == {f"/api/v1/jobs/{JOB_ID}/result"}
    assert result.succeeded and result.ended
    assert result.response_body == {"ok": True}
    assert result.tasks["main"].name == "main"
    assert result.tasks["main"].response_status == 200


@MODES
async def test_wait_raises_wait_timeout_with_the_last_result(mode: str) -> None:
    handler = Recorder(answer(200, result_doc("running")))

    with pytest.raises(WaitTimeout) as caught:
        await call(mode, handler, "wait", JOB_ID, timeout=0)

    assert caught.value.job_id == JOB_ID
    assert caught.value.last.status == "running"
    assert len(handler.requests) == 1


@MODES
@pytest.mark.parametrize(("timeout", "interval"), [(None, 0.0), (-1.0, 0.2)])
async def test_wait_refuses_bad_pacing(mode: str, timeout: float | None, interval: float) -> None:
    handler = Recorder(answer(200, result_doc("running")))

    with pytest.raises(ValueError):
        await call(mode, handler, "wait", JOB_ID, timeout=timeout, poll_interval=interval)
    assert handler.requests == []


# --------------------------------------------------------------------------- results


def test_results_are_frozen_and_keep_their_document() -> None:
    detail = {
        "job_id": JOB_ID,
        "name": None,
        "status": "succeeded",
        "attempt": None,
        "priority": 0,
        "tags": [],
        "warnings": [],
        "created_at": "2026-11-29T11:33:44.043Z",
        "tasks": [
            {"name": "a", "status": "succeeded", "attempt": 1, "depends_on": []},
            {
                "name": "b",
                "status": "skipped",
                "attempt": 1,
                "depends_on": ["a"],
                "skip_reason": "when",
            },
        ],
        "added_later": 1,
    }
    handler = Recorder(answer(200, detail))

    with JobQueue(BASE, transport=httpx.MockTransport(handler)) as jq:
        job = jq.get(JOB_ID)

    assert [t.name for t in job.tasks] == ["a", "b"]
    assert job.tasks[1].depends_on == ("a",) and job.tasks[1].skip_reason == "when"
    assert job.created_at == datetime(2026, 11, 29, 11, 33, 44, 43000, tzinfo=UTC)
    assert job.raw["added_later"] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.status = "failed"  # type: ignore[misc]


def test_the_package_stands_alone() -> None:
    """Importing the client loads none of the server's packages."""
    code = (
        "import sys, jobqueue_client\n"
        "loaded = {m.split('.')[0] for m in sys.modules} & {'engine', 'api', 'schemas'}\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_everything_in_all_is_exported() -> None:
    for name in jobqueue_client.__all__:
        assert hasattr(jobqueue_client, name), name


def test_the_sync_and_async_clients_have_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")}

    assert public(JobQueue) == public(AsyncJobQueue)
    assert {"submit", "validate", "get", "result", "attempts", "wait"} <= public(JobQueue)
    assert {"cancel", "retry", "delete", "list", "iter_jobs", "close"} <= public(JobQueue)


@MODES
async def test_complete_callback_posts_the_report_to_the_token(mode: str) -> None:
    answer = {"job_id": JOB_ID, "task": "work", "status": "failed", "error": {"type": "x"}}
    recorder = Recorder(httpx.Response(200, json=answer))

    done = await call(mode, recorder, "complete_callback", "t/k", error={"message": "no"})
    ok = await call(mode, recorder, "complete_callback", "tok", output={"n": 1})

    first, second = recorder.requests
    assert (first.method, first.url.raw_path) == ("POST", b"/api/v1/callbacks/t%2Fk")
    assert json.loads(first.content) == {"status": "failed", "error": {"message": "no"}}
    assert json.loads(second.content) == {"status": "succeeded", "output": {"n": 1}}
    assert (done.job_id, done.task, done.status, done.error) == (
        JOB_ID,
        "work",
        "failed",
        {"type": "x"},
    )
    assert ok.raw == answer


@MODES
async def test_webhooks_lists_the_deliveries(mode: str) -> None:
    delivery = {
        "delivery_id": "wh_1",
        "event": "job.finished",
        "job_status": "succeeded",
        "url": "https://hooks.example/x",
        "status": "pending",
        "attempts": [{"attempt": 1, "status_code": 500}],
        "next_attempt_at": "2026-12-02T10:54:31.020Z",
    }
    recorder = Recorder(httpx.Response(200, json={"job_id": JOB_ID, "deliveries": [delivery]}))

    (found,) = await call(mode, recorder, "webhooks", JOB_ID)

    assert recorder.last.url.path == f"/api/v1/jobs/{JOB_ID}/webhooks"
    assert (found.delivery_id, found.status, found.attempts) == (
        "wh_1",
        "pending",
        ({"attempt": 1, "status_code": 500},),
    )
    assert found.next_attempt_at == datetime(2026, 12, 2, 10, 54, 31, 20000, tzinfo=UTC)
