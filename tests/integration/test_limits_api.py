"""The limits a shared server sets on requests, on a real server: request body size on every
route that reads a body (413), and the creation-time limits of a job document (422 naming the
setting, with the location)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.settings import Settings
from tests.support.api_server import ApiServer

BODY_ROUTES = [
    ("POST", "/api/v1/jobs"),
    ("POST", "/jobs"),
    ("POST", "/api/v1/jobs/batch"),
    ("POST", "/api/v1/jobs/validate"),
    ("POST", "/api/v1/interface-masters"),
    ("PUT", "/api/v1/interface-masters/Any"),
    ("POST", "/api/v1/keys"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    db = tmp_path_factory.mktemp("limits") / "api.db"
    limits = {
        "max_request_bytes": 4096,
        "max_tasks_per_job": 3,
        "max_headers_per_task": 2,
        "max_header_bytes": 64,
        "max_url_length": 60,
    }
    with ApiServer(db, **limits) as s:
        yield s


def _problems(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 422, answer.text
    return list(answer.json()["detail"]["errors"])


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
def test_every_route_with_a_body_refuses_one_over_the_limit(
    server: ApiServer, method: str, path: str
) -> None:
    big = {"name": "x" * 5000}
    answer = httpx.request(method, server.url(path), json=big)
    assert answer.status_code == 413, answer.text
    assert answer.json()["detail"]["code"] == "too_large"
    assert "JOBQUEUE_MAX_REQUEST_BYTES" in answer.json()["detail"]["message"]


def test_too_many_tasks_is_a_422_at_tasks(server: ApiServer) -> None:
    job = {"tasks": [{"name": f"t{i}", "url": "http://127.0.0.1:9/"} for i in range(4)]}
    for path in ("/api/v1/jobs", "/api/v1/jobs/validate"):
        [problem] = _problems(httpx.post(server.url(path), json=job))
        assert problem["code"] == "limit_exceeded" and problem["location"] == "/tasks"
        assert "JOBQUEUE_MAX_TASKS_PER_JOB=3" in problem["message"]
        assert (problem["expected"], problem["actual"]) == (3, 4)


def test_header_count_header_size_and_url_length_are_located(server: ApiServer) -> None:
    task = {
        "name": "big",
        "url": "http://127.0.0.1:9/" + "a" * 60,
        "headers": {"A": "1", "B": "2", "X-Long": "v" * 80},
    }
    problems = _problems(httpx.post(server.url("/api/v1/jobs"), json={"tasks": [task]}))
    where = {p["location"]: p for p in problems}
    assert set(where) == {"/tasks/0/url", "/tasks/0/headers", "/tasks/0/headers/X-Long"}
    assert "JOBQUEUE_MAX_URL_LENGTH=60" in where["/tasks/0/url"]["message"]
    assert "JOBQUEUE_MAX_HEADERS_PER_TASK=2" in where["/tasks/0/headers"]["message"]
    assert "JOBQUEUE_MAX_HEADER_BYTES=64" in where["/tasks/0/headers/X-Long"]["message"]
    assert {p["task"] for p in problems} == {"big"}

    single = {"url": task["url"], "headers": {"X-Long": "v" * 80}}
    problems = _problems(httpx.post(server.url("/api/v1/jobs"), json=single))
    assert {p["location"] for p in problems} == {"/url", "/headers/X-Long"}


def test_a_batch_item_over_a_limit_is_refused_alone(server: ApiServer) -> None:
    ok = {"url": "http://127.0.0.1:9/", "scheduled_at": "2999-01-01T00:00:00Z"}
    too_long = {"url": "http://127.0.0.1:9/" + "a" * 60}
    answer = httpx.post(server.url("/api/v1/jobs/batch"), json={"jobs": [ok, too_long]})
    assert answer.status_code == 200, answer.text
    first, second = answer.json()["items"]
    assert first["status_code"] == 201 and second["status_code"] == 422
    assert second["error"]["errors"][0]["location"] == "/url"


def test_template_limits_are_settings_that_reach_the_engine() -> None:
    config = Settings(template_max_output_bytes=4096, template_max_render_seconds=0.25)
    assert config.engine_config().max_template_output_bytes == 4096
    assert config.engine_config().max_template_render_seconds == 0.25
