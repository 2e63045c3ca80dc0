"""Live job events: the same messages over Server-Sent Events and over a WebSocket.

First ``{"type": "snapshot", "job": <job detail>}``, then one message per task or job status
change, in order; the stream ends after the job's final event. Every message carries its event
``id``; SSE sends it as the ``id:`` field, so a client that reconnects with ``Last-Event-ID``
(browsers' ``EventSource`` do it by themselves) gets the events after it, and no snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Response, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect

from api.auth import PrincipalDep
from api.deps import EngineDep
from api.openapi import answers
from api.responses import FastJSONResponse
from engine import JobQueueError, NotFound

router = APIRouter(tags=["events"])
log = logging.getLogger("jobqueue.api")

#: the WebSocket close code of an unknown job (4000-4999 are the application's)
CLOSE_NOT_FOUND = 4404


def _last_event_id(raw: str | None) -> int | None:
    """The event id a client resumes after; ``ValueError`` for anything but a decimal id."""
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValueError("an event id is the decimal number of an event this stream sent")
    return int(raw)


def _invalid_event_id(message: str, location: str) -> FastJSONResponse:
    detail = {"code": "invalid_request", "message": message, "location": location}
    return FastJSONResponse({"detail": detail}, 422)


def _sse(message: dict[str, Any]) -> bytes:
    return b"id: %d\ndata: %s\n\n" % (message["id"], orjson.dumps(message))


@router.get(
    "/events",
    response_class=Response,
    summary="A job's live events as Server-Sent Events",
    description="`text/event-stream`: a snapshot of the job, then one message per task or job "
    "status change, each with its event id; the stream ends after the job's final event. "
    "Reconnect with `Last-Event-ID` (or `?last_event_id=`) to resume after that event; a "
    "resumed stream of a job that already ended answers 204 (an `EventSource` then stops "
    "reconnecting).",
    responses={
        200: {
            "description": "The event stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **answers(204, None, "Resumed after the job's final event: nothing more to send", 404, 422),
    },
)
async def job_event_stream(
    engine: EngineDep,
    principal: PrincipalDep,
    job_id: Annotated[str, Query(min_length=1, max_length=64)],
    last_event_id: Annotated[str | None, Query(max_length=20)] = None,
    last_event_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    try:
        if last_event_header is not None:
            after = _last_event_id(last_event_header)
        else:
            after = _last_event_id(last_event_id)
    except ValueError as exc:
        where = "/headers/Last-Event-ID" if last_event_header is not None else "/last_event_id"
        return _invalid_event_id(str(exc), where)
    feed = engine.job_events(job_id, after=after, owner=principal.scope)
    first = await anext(feed, None)  # NotFound answers 404 before the stream starts
    if first is None:
        return Response(status_code=204)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield _sse(first)
            async for message in feed:
                yield _sse(message)
        finally:
            await feed.aclose()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.websocket("/jobs/{job_id}/events")
async def job_event_socket(
    websocket: WebSocket, principal: PrincipalDep, job_id: str, last_event_id: str | None = None
) -> None:
    """The same messages as ``GET /events`` as JSON text frames; ``?last_event_id=`` resumes.
    The server closes with 1000 after the job's final event, 4404 for an unknown job, 1008 for
    a malformed ``last_event_id``."""
    engine = websocket.app.state.engine
    await websocket.accept()
    try:
        after = _last_event_id(last_event_id)
    except ValueError as exc:
        await websocket.close(code=1008, reason=str(exc))
        return
    feed = engine.job_events(job_id, after=after, owner=principal.scope)
    sender = asyncio.create_task(_send_all(websocket, feed))
    receiver = asyncio.create_task(_until_disconnect(websocket))
    try:
        await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        client_left = receiver.done()
    finally:
        for task in (sender, receiver):
            task.cancel()
        await asyncio.gather(sender, receiver, return_exceptions=True)
        await feed.aclose()
    if client_left or sender.cancelled():
        return
    if sender.exception() is not None:
        log.error("the event socket of job %s failed", job_id, exc_info=sender.exception())
        code, reason = 1011, "server error"
    else:
        code, reason = sender.result()
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason)


async def _send_all(websocket: WebSocket, feed: AsyncIterator[dict[str, Any]]) -> tuple[int, str]:
    """Send every message; how to close (code, reason) once the feed ends."""
    try:
        async for message in feed:
            await websocket.send_text(orjson.dumps(message).decode())
    except NotFound as exc:
        return (CLOSE_NOT_FOUND, str(exc)[:120])
    except JobQueueError as exc:
        return (1011, str(exc)[:120])
    return (1000, "the job ended")


async def _until_disconnect(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, until it goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
