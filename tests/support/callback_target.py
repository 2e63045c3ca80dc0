"""Real local servers for callback tasks and completion webhooks, each uvicorn in a thread.

``CallbackTarget`` is the remote system of a callback task: ``POST /work`` records the request
(whose body carries ``{{ callback.url }}`` and ``{{ callback.token }}``) and answers 202;
:meth:`CallbackTarget.call_back` later POSTs a report to the recorded URL from a thread of its
own, as a remote system would. ``?inline=1`` calls back before answering (the callback then
arrives while the worker has not yet recorded the 202).

``WebhookReceiver`` records every ``POST /hook`` (headers and the raw body) and answers 500 to
the first ``fail_first`` of them.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer


class CallbackTarget(ThreadedServer):
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/work", self._work, methods=["POST"])])
        super().__init__(app, name="callback-target", lifespan="off")

    async def _work(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self._lock:
            self.received.append(body)
        if request.query_params.get("inline"):
            async with httpx.AsyncClient(timeout=10) as client:
                report = {"status": "succeeded", "output": {"n": 1}}
                await client.post(body["url"], json=report)
        status = int(request.query_params.get("status", "202"))
        return JSONResponse({"accepted": True}, status_code=status)

    def tokens(self) -> list[str]:
        with self._lock:
            return [r["token"] for r in self.received]

    def call_back(self, index: int, report: Any) -> httpx.Response:
        """POST ``report`` to the callback URL of request ``index``, from another thread."""
        url = self.received[index]["url"]
        answer: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: answer.append(httpx.post(url, json=report, timeout=10)),
            name="remote-system",
        )
        thread.start()
        thread.join(15)
        return answer[0]


class WebhookReceiver(ThreadedServer):
    def __init__(self, *, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        super().__init__(app, name="webhook-receiver", lifespan="off")

    async def _hook(self, request: Request) -> JSONResponse:
        raw = await request.body()
        with self._lock:
            self.received.append({"headers": dict(request.headers), "body": raw})
            n = len(self.received)
        if n <= self.fail_first:
            return JSONResponse({"error": "not now"}, status_code=500)
        return JSONResponse({"ok": True})

    def count(self) -> int:
        with self._lock:
            return len(self.received)
