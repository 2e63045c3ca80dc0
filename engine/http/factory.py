"""``create_executor``: the one place that picks a transport."""

from __future__ import annotations

from typing import Literal

import httpx

from engine.http.aiohttp_executor import AiohttpExecutor
from engine.http.base import Executor
from engine.http.httpx_executor import HttpxExecutor
from engine.http.ssrf import Resolver, TargetPolicy


def create_executor(
    *,
    kind: Literal["aiohttp", "httpx"] = "aiohttp",
    max_connections: int,
    max_body_bytes: int,
    target_policy: TargetPolicy,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> Executor:
    """An executor with a pool of ``max_connections`` and bodies read up to ``max_body_bytes``.

    Both kinds check every hop against ``target_policy`` and connect only to checked addresses:
    use this (or :func:`engine.http.check_url`) for any request the engine sends, webhook
    deliveries included. ``kind="aiohttp"`` is the default, for production. ``kind="httpx"``
    sends through ``transport`` (default: httpx's own, pinned to the checked addresses), e.g.
    ``httpx.MockTransport`` or respx in tests (a supplied transport is not pinned).
    ``resolver`` (host -> addresses) replaces the system resolver, for tests of the target
    policy. Call ``aclose()`` when done.
    """
    if kind == "aiohttp":
        if transport is not None:
            raise ValueError("transport= is only used by the httpx executor (kind='httpx')")
        return AiohttpExecutor(
            max_connections=max_connections,
            max_body_bytes=max_body_bytes,
            target_policy=target_policy,
            resolver=resolver,
        )
    if kind == "httpx":
        return HttpxExecutor(
            max_connections=max_connections,
            max_body_bytes=max_body_bytes,
            target_policy=target_policy,
            transport=transport,
            resolver=resolver,
        )
    raise ValueError(f"unknown executor kind {kind!r}: expected 'aiohttp' or 'httpx'")
