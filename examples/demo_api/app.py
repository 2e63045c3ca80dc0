"""The demo API: small, deterministic stand-ins for real services, for the example workflows.

======  ======================  =======================================================
GET     /search?q=cats&limit=5  ``{query, count, results: [{id, title, score}]}``
GET     /items/{id}             ``{id, title, summary, tags, price}``
POST    /enrich                 ``{ids: [int]}`` -> ``{items: [{id, summary, tags}], count}``
POST    /aggregate              ``{parts: [number | {value or price}]}`` -> ``{total, n}``
POST    /flaky/{key}?fail=2     503 for the first ``fail`` calls per key, then 200
                                ``{key, attempts}`` (``&retry_after=0`` adds Retry-After)
GET     /flaky/{key}            ``{key, attempts}``: calls so far
GET     /slow?seconds=2         sleeps, then ``{slept}``
POST    /later                  ``{callback_url, seconds, output | fail}`` -> 202 ``{accepted}``;
                                ``seconds`` later it POSTs the outcome to ``callback_url``
POST    /notify                 records ``{message, ...}`` -> ``{delivered: true, id}``
GET     /notifications          ``{items, count}``: every notification so far
GET     /callbacks              ``{items, count}``: every callback ``/later`` made so far
POST    /webhooks               records a completion webhook (headers, raw body)
GET     /webhooks               ``{items, count}``: every webhook received so far
GET     /healthz                ``{status: "ok"}``
======  ======================  =======================================================

Answers depend only on the input (``/search?q=cats`` is the same everywhere, every time); the
only state, per app, is the flaky counters and the notifications, kept on ``app.state.demo``.
An empty query (or ``limit=0``) finds nothing, which sends the conditional example down its
other branch.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

ADJECTIVES = ("Fluffy", "Quiet", "Curious", "Sleepy", "Brave", "Tiny", "Grumpy", "Golden")
NOUNS = ("Cat", "Kitten", "Lynx", "Tabby", "Siamese", "Ocelot", "Panther", "Caracal")
TAGS = ("classic", "fast", "fluffy", "indoor", "new", "outdoor", "popular", "rare")
#: request headers a notification keeps, so a test can see what JobQueue sent
RECORDED_HEADERS = ("x-jobqueue-job", "x-jobqueue-task", "x-jobqueue-attempt", "idempotency-key")


@dataclass
class DemoState:
    #: calls so far per ``/flaky/{key}``
    flaky: dict[str, int] = field(default_factory=dict)
    #: every ``POST /notify``, oldest first
    notifications: list[dict[str, Any]] = field(default_factory=list)
    #: every callback ``/later`` made: ``{url, report, status_code}`` (or ``error``)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    #: every ``POST /webhooks``: ``{headers, body}`` (the raw body as text)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    #: the ``/later`` work still running (kept so it is not garbage-collected)
    pending: set[asyncio.Task[None]] = field(default_factory=set)


def get_state(request: Request) -> DemoState:
    state: DemoState = request.app.state.demo
    return state


StateDep = Annotated[DemoState, Depends(get_state)]


class EnrichRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    ids: list[StrictInt] = Field(max_length=1000)


class AggregateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    parts: list[StrictInt | StrictFloat | dict[str, Any]] = Field(max_length=10_000)


class LaterRequest(BaseModel):
    """Work that finishes later: JobQueue hands over its callback URL (``{{ callback.url }}``)."""

    model_config = ConfigDict(extra="forbid")

    callback_url: str = Field(pattern=r"^https?://", max_length=8192)
    seconds: float = Field(default=1.0, ge=0, le=60)
    #: the output to report (default: ``{"done": true, "waited": seconds}``)
    output: Any = None
    #: report a failure with this message instead
    fail: str | None = Field(default=None, max_length=1000)


class NotifyRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    message: str = Field(max_length=100_000)
    channel: str = "default"


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def make_item(item_id: int) -> dict[str, Any]:
    """The item ``item_id``: the same fields every time."""
    rng = _rng("item", item_id)
    title = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return {
        "id": item_id,
        "title": title,
        "summary": f"{title} (item {item_id}), {rng.randint(1, 12)} years of good reviews.",
        "tags": sorted(rng.sample(TAGS, 2)),
        "price": round(rng.uniform(1, 100), 2),
    }


def search_results(query: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` distinct items for ``query``, best first; a shorter limit gives a prefix."""
    if not query.strip():
        return []
    rng = _rng("search", query.strip().lower())
    seen: set[int] = set()
    results: list[dict[str, Any]] = []
    while len(results) < limit:
        item_id = rng.randint(1, 999)
        if item_id in seen:
            continue
        seen.add(item_id)
        score = round(1 / (len(results) + 1 + rng.random() / 2), 3)
        results.append({"id": item_id, "title": make_item(item_id)["title"], "score": score})
    return results


def _part_value(part: int | float | dict[str, Any]) -> float:
    if not isinstance(part, dict):
        return part
    for key in ("value", "price"):
        value = part.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    return 0


router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/search")
async def search(
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=0, le=50)] = 5,
) -> dict[str, Any]:
    results = search_results(q, limit)
    return {"query": q, "count": len(results), "results": results}


@router.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, Any]:
    if not 1 <= item_id <= 999:
        raise HTTPException(status_code=404, detail=f"no item {item_id}")
    return make_item(item_id)


@router.post("/enrich")
async def enrich(body: EnrichRequest) -> dict[str, Any]:
    items = []
    for item_id in body.ids:
        item = make_item(item_id)
        items.append({"id": item_id, "summary": item["summary"], "tags": item["tags"]})
    return {"items": items, "count": len(items)}


@router.post("/aggregate")
async def aggregate(body: AggregateRequest) -> dict[str, Any]:
    total = sum(_part_value(part) for part in body.parts)
    return {"total": round(total, 6), "n": len(body.parts)}


@router.post("/flaky/{key}", response_model=None)
async def flaky(
    key: str,
    state: StateDep,
    fail: Annotated[int, Query(ge=0, le=100)] = 2,
    retry_after: Annotated[float | None, Query(ge=0, le=60)] = None,
) -> dict[str, Any] | JSONResponse:
    attempts = state.flaky[key] = state.flaky.get(key, 0) + 1
    if attempts > fail:
        return {"key": key, "attempts": attempts}
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    body = {"key": key, "attempts": attempts, "error": f"failing the first {fail} calls"}
    return JSONResponse(body, status_code=503, headers=headers)


@router.get("/flaky/{key}")
async def flaky_count(key: str, state: StateDep) -> dict[str, Any]:
    return {"key": key, "attempts": state.flaky.get(key, 0)}


@router.get("/slow")
async def slow(seconds: Annotated[float, Query(ge=0, le=60)] = 2) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


async def _call_back(body: LaterRequest, state: DemoState) -> None:
    await asyncio.sleep(body.seconds)
    if body.fail is not None:
        report: dict[str, Any] = {"status": "failed", "error": {"message": body.fail}}
    else:
        output = body.output if body.output is not None else {"done": True, "waited": body.seconds}
        report = {"status": "succeeded", "output": output}
    record: dict[str, Any] = {"url": body.callback_url, "report": report}
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            record["status_code"] = (await client.post(body.callback_url, json=report)).status_code
    except httpx.HTTPError as exc:
        record["error"] = repr(exc)
    state.callbacks.append(record)


@router.post("/later", status_code=202)
async def later(body: LaterRequest, state: StateDep) -> dict[str, Any]:
    task = asyncio.create_task(_call_back(body, state))
    state.pending.add(task)
    task.add_done_callback(state.pending.discard)
    return {"accepted": True, "seconds": body.seconds}


@router.get("/callbacks")
async def callbacks_made(state: StateDep) -> dict[str, Any]:
    return {"items": state.callbacks, "count": len(state.callbacks)}


@router.post("/webhooks")
async def receive_webhook(request: Request, state: StateDep) -> dict[str, Any]:
    """Records a completion webhook as it arrived (headers, raw body)."""
    raw = await request.body()
    state.webhooks.append({"headers": dict(request.headers), "body": raw.decode()})
    return {"received": len(state.webhooks)}


@router.get("/webhooks")
async def webhooks_received(state: StateDep) -> dict[str, Any]:
    return {"items": state.webhooks, "count": len(state.webhooks)}


@router.post("/notify")
async def notify(body: NotifyRequest, request: Request, state: StateDep) -> dict[str, Any]:
    record_id = f"ntf_{len(state.notifications) + 1}"
    sent = {name: request.headers[name] for name in RECORDED_HEADERS if name in request.headers}
    received_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    record = {**body.model_dump(), "id": record_id, "received_at": received_at, "headers": sent}
    state.notifications.append(record)
    return {"delivered": True, "id": record_id}


@router.get("/notifications")
async def notifications(state: StateDep) -> dict[str, Any]:
    return {"items": state.notifications, "count": len(state.notifications)}


def create_app() -> FastAPI:
    """A fresh demo API with its own (empty) state."""
    app = FastAPI(title="JobQueue demo API", version="1.0", docs_url="/docs")
    app.state.demo = DemoState()
    app.include_router(router)
    return app
