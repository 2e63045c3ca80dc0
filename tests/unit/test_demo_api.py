"""examples.demo_api, in process (httpx's ASGI transport); and the example workflows played on it.

The walk-through at the end renders templates with plain Jinja2 and sends the requests through
an in-process client, one task after another in file order: a stand-in for the engine, so that a
workflow and the demo API cannot drift apart (a renamed field, a wrong path). The engine's own
run of every example is an integration test.

(Not starlette's TestClient: with plain httpx installed it warns, and warnings are errors here.)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.jobs.loader import load_workflow_file
from examples.demo_api import create_app
from examples.demo_api.app import make_item, search_results
from schemas.jobs import DEFAULT_RETRY_ON_STATUS, JobSpec, TaskSpec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workflows"
BASE_URL = "http://127.0.0.1:8001"


def demo_client() -> httpx.AsyncClient:
    """A client of a fresh demo app; absolute URLs of any host reach it too."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app()), base_url=BASE_URL)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with demo_client() as client:
        yield client


async def test_healthz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_search_is_deterministic_and_limited(client: httpx.AsyncClient) -> None:
    first = (await client.get("/search", params={"q": "cats", "limit": 5})).json()
    async with demo_client() as other:
        again = (await other.get("/search?q=cats&limit=5")).json()
    assert first == again
    assert first["query"] == "cats"
    assert first["count"] == len(first["results"]) == 5
    ids = [result["id"] for result in first["results"]]
    assert len(set(ids)) == 5
    assert all(isinstance(result["score"], float) for result in first["results"])
    scores = [result["score"] for result in first["results"]]
    assert scores == sorted(scores, reverse=True)
    shorter = (await client.get("/search?q=cats&limit=2")).json()
    assert shorter["results"] == first["results"][:2]
    assert (await client.get("/search?q=dogs")).json()["results"] != first["results"]


@pytest.mark.parametrize("query", ["q=&limit=5", "q=cats&limit=0", "limit=3"])
async def test_search_can_find_nothing(client: httpx.AsyncClient, query: str) -> None:
    assert (await client.get(f"/search?{query}")).json()["count"] == 0


async def test_search_limit_is_bounded(client: httpx.AsyncClient) -> None:
    assert (await client.get("/search?q=cats&limit=51")).status_code == 422


async def test_items_match_search_titles(client: httpx.AsyncClient) -> None:
    result = (await client.get("/search?q=cats&limit=1")).json()["results"][0]
    item = (await client.get(f"/items/{result['id']}")).json()
    assert item == make_item(result["id"])
    assert item["title"] == result["title"]
    assert set(item) == {"id", "title", "summary", "tags", "price"}
    assert (await client.get("/items/0")).status_code == 404
    assert (await client.get("/items/abc")).status_code == 422


async def test_enrich_describes_each_id(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/enrich", json={"ids": [3, 7], "expected": 2, "note": "extra is fine"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["items"]] == [3, 7]
    assert body["items"][0] == {
        "id": 3,
        "summary": make_item(3)["summary"],
        "tags": make_item(3)["tags"],
    }


@pytest.mark.parametrize("body", [{}, {"ids": ["1"]}, {"ids": [1.5]}, {"ids": [True]}, {"ids": 3}])
async def test_enrich_refuses_missing_or_non_integer_ids(
    client: httpx.AsyncClient, body: object
) -> None:
    assert (await client.post("/enrich", json=body)).status_code == 422


async def test_flaky_fails_the_first_calls_per_key(client: httpx.AsyncClient) -> None:
    codes = [(await client.post("/flaky/a?fail=2")).status_code for _ in range(4)]
    assert codes == [503, 503, 200, 200]
    assert (await client.post("/flaky/b?fail=1")).status_code == 503  # its own counter
    last = (await client.post("/flaky/a?fail=2")).json()
    assert last == {"key": "a", "attempts": 5}
    assert (await client.get("/flaky/a")).json() == {"key": "a", "attempts": 5}
    assert (await client.get("/flaky/never")).json() == {"key": "never", "attempts": 0}


async def test_flaky_retry_after_only_when_asked(client: httpx.AsyncClient) -> None:
    plain = await client.post("/flaky/x?fail=5")
    assert "retry-after" not in plain.headers
    assert plain.json()["attempts"] == 1
    asked = await client.post("/flaky/x?fail=5&retry_after=0")
    assert asked.headers["retry-after"] == "0"


async def test_state_belongs_to_each_app() -> None:
    async with demo_client() as one, demo_client() as two:
        await one.post("/flaky/k?fail=0")
        await one.post("/notify", json={"message": "hi"})
        assert (await two.get("/flaky/k")).json()["attempts"] == 0
        assert (await two.get("/notifications")).json() == {"items": [], "count": 0}


async def test_slow_sleeps(client: httpx.AsyncClient) -> None:
    assert (await client.get("/slow?seconds=0.01")).json() == {"slept": 0.01}
    assert (await client.get("/slow?seconds=61")).status_code == 422


async def test_notify_records_messages_and_the_jobqueue_headers(client: httpx.AsyncClient) -> None:
    headers = {"X-JobQueue-Job": "j_1", "Idempotency-Key": "k1"}
    first = await client.post("/notify", json={"message": "hello", "count": 2}, headers=headers)
    assert first.json() == {"delivered": True, "id": "ntf_1"}
    assert (await client.post("/notify", json={"message": "again"})).json()["id"] == "ntf_2"
    listed = (await client.get("/notifications")).json()
    assert listed["count"] == 2
    record = listed["items"][0]
    assert record["message"] == "hello"
    assert record["count"] == 2
    assert record["channel"] == "default"
    assert record["headers"] == {"x-jobqueue-job": "j_1", "idempotency-key": "k1"}
    assert record["received_at"].endswith("Z")
    assert (await client.post("/notify", json={"channel": "x"})).status_code == 422


async def test_aggregate_sums_numbers_and_item_prices(client: httpx.AsyncClient) -> None:
    parts = [1, 2.5, {"price": 10}, {"value": 4}, {"other": 99}]
    assert (await client.post("/aggregate", json={"parts": parts})).json() == {
        "total": 17.5,
        "n": 5,
    }
    assert (await client.post("/aggregate", json={})).status_code == 422


async def test_search_results_helper_matches_the_endpoint(client: httpx.AsyncClient) -> None:
    assert (await client.get("/search?q=Cats")).json()["results"] == search_results("cats", 5)


# --------------------------------------------------------------------------- examples, played


_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
_WHOLE = re.compile(r"\{\{(.*)\}\}", re.DOTALL)


def _render(value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, dict):
        return {key: _render(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, context) for item in value]
    if not isinstance(value, str):
        return value
    whole = _WHOLE.fullmatch(value.strip())
    if whole and "{{" not in whole.group(1) and "}}" not in whole.group(1):
        return _ENV.compile_expression(whole.group(1))(**context)
    return _ENV.from_string(value).render(context)


def _schemas(spec: JobSpec, task: TaskSpec) -> tuple[Any, Any]:
    master = spec.interfaces.get(task.interface or "")
    input_schema = task.input_schema or (master.input_schema if master else None)
    output_schema = task.output_schema or (master.output_schema if master else None)
    return input_schema, output_schema


async def _play_task(
    client: httpx.AsyncClient, spec: JobSpec, task: TaskSpec, context: dict[str, Any]
) -> Any:
    # merged by hand: httpx's `params=` would replace the URL's own query, not add to it
    url = httpx.URL(_render(task.url, context)).copy_merge_params(_render(task.params, context))
    body = _render(task.body, context)
    input_schema, output_schema = _schemas(spec, task)
    if input_schema is not None:
        jsonschema.validate(body, input_schema)
    retry_on = set(task.retry_on_status or spec.retry_on_status or DEFAULT_RETRY_ON_STATUS)
    max_attempts = task.max_attempts or spec.max_attempts or 1
    for attempt in range(1, max_attempts + 1):  # noqa: B007 (the last value is reported)
        response = await client.request(
            task.method,
            url,
            headers=_render(task.headers, context),
            json=body,
        )
        if response.status_code not in retry_on:
            break
    response.raise_for_status()
    if output_schema is not None:
        jsonschema.validate(response.json(), output_schema)
    return {"status": "succeeded", "output": response.json(), "attempts": attempt}


async def play(client: httpx.AsyncClient, name: str, **params: str) -> dict[str, dict[str, Any]]:
    """Run an example's tasks in file order against the demo API; the outcome per task."""
    spec, _ = load_workflow_file(EXAMPLES / f"{name}.yaml", params=params or None)
    done: dict[str, dict[str, Any]] = {}
    job = {"id": f"j_{uuid.uuid4().hex}", "name": spec.name}
    for task in spec.tasks:
        context = {"params": spec.params, "tasks": done, "job": job}
        if task.when and not _ENV.compile_expression(task.when)(**context):
            done[task.name] = {"status": "skipped"}
            continue
        done[task.name] = await _play_task(client, spec, task, context)
    return done


async def test_single_call_example(client: httpx.AsyncClient) -> None:
    outcome = await play(client, "single_call")
    assert outcome["main"]["output"]["count"] == 3  # q=cats from the URL, limit=3 from params


async def test_fan_out_fan_in_example(client: httpx.AsyncClient) -> None:
    outcome = await play(client, "fan_out_fan_in")
    prices = [outcome[f"item_{n}"]["output"]["price"] for n in (1, 2, 3)]
    assert outcome["aggregate"]["output"] == {"total": round(sum(prices), 6), "n": 3}


async def test_search_enrich_notify_example(client: httpx.AsyncClient) -> None:
    outcome = await play(client, "search_enrich_notify")
    assert outcome["notify"]["output"]["delivered"] is True
    (record,) = (await client.get("/notifications")).json()["items"]
    ids = [result["id"] for result in outcome["search"]["output"]["results"]]
    assert record["count"] == 5
    assert record["message"].startswith('Search for "cats" found 5 results.\n')
    assert [line.split(":")[0] for line in record["message"].splitlines()[1:]] == [
        f"- #{item_id}" for item_id in ids
    ]


async def test_retry_backoff_example(client: httpx.AsyncClient) -> None:
    outcome = await play(client, "retry_backoff")
    assert outcome["flaky"]["attempts"] == 3
    assert outcome["check"]["output"]["attempts"] == 3
    with pytest.raises(httpx.HTTPStatusError, match="503"):
        await play(client, "retry_backoff", fail="4")


@pytest.mark.parametrize(
    ("params", "ran", "skipped"),
    [({}, "found", "not_found"), ({"limit": "0"}, "not_found", "found")],
)
async def test_conditional_branch_example(
    client: httpx.AsyncClient, params: dict[str, str], ran: str, skipped: str
) -> None:
    outcome = await play(client, "conditional_branch", **params)
    assert outcome[ran]["status"] == "succeeded"
    assert outcome[skipped]["status"] == "skipped"
    assert outcome["report"]["output"]["count"] == 1
