"""CORS, off unless ``JOBQUEUE_CORS_ORIGINS`` lists origins.

The settings are known only once the app starts (``lifespan``), after its middleware stack is
fixed; this middleware builds Starlette's ``CORSMiddleware`` for those origins on the first
request, or passes every request straight through when none are configured.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

_UNSET = object()


class LazyCORS:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._handler: ASGIApp | object = _UNSET

    def _build(self, scope: Scope) -> ASGIApp:
        origins = scope["app"].state.settings.cors_origins
        if not origins:
            return self.app
        return CORSMiddleware(
            self.app,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Idempotent-Replayed"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        handler = self._handler
        if handler is _UNSET:
            handler = self._handler = self._build(scope)
        await handler(scope, receive, send)  # type: ignore[operator]
