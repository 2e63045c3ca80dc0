"""The executor over any ``httpx.AsyncBaseTransport``: for tests (respx, ``httpx.MockTransport``)
and for comparing transports.

It calls the transport directly, not through ``httpx.AsyncClient``: no client cookie jar shared
between jobs, no proxies from the environment, no client-side redirect or auth logic. All of
that is :class:`~engine.http.base.BaseExecutor`'s, shared with the aiohttp executor.

The target is checked before each hop by resolving the host here; the transport then resolves
it again to connect, so unlike the aiohttp executor the connection is *not* pinned to the
checked address. Production uses the aiohttp executor. With a supplied transport, no supplied
resolver and ``allow_private``, host names are not resolved at all (a mock transport connects
nowhere; IP literals and ``allowed_hosts`` names are still checked).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import cast

import httpx
from yarl import URL

from engine.http.base import BaseExecutor, Hop, RawResponse, describe_exception
from engine.http.codec import response_headers
from engine.http.messages import HttpError
from engine.http.ssrf import Resolver, TargetPolicy, check_addresses, system_resolve
from engine.http.urls import describe_target


class HttpxExecutor(BaseExecutor):
    """Send through an httpx transport (default: httpx's own pooled ``AsyncHTTPTransport``)."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_body_bytes: int,
        target_policy: TargetPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        super().__init__(max_body_bytes=max_body_bytes, target_policy=target_policy)
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._skip_dns = transport is not None and resolver is None and target_policy.allow_private
        self._resolve = resolver or system_resolve
        self._transport = transport or httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=False,
        )

    async def _check_target(self, url: URL) -> None:
        host = url.raw_host or ""
        policy = self.target_policy
        if self._check_literal(host):
            return
        if self._skip_dns and (not policy.allowed_hosts or policy.host_allowed(host)):
            return
        try:
            addresses = await self._resolve(host)
        except OSError as exc:
            raise HttpError("network", f"cannot resolve host {host!r}: {exc}") from exc
        check_addresses(host, addresses, policy)

    async def _send_once(self, hop: Hop) -> RawResponse:
        await self._check_target(hop.url)
        request = httpx.Request(
            hop.method, str(hop.url), headers=list(hop.headers.items()), content=hop.content
        )
        where = f"{hop.method} {describe_target(hop.url)}"
        try:
            response = await self._transport.handle_async_request(request)
            try:
                data = await self._read(response)
            finally:
                await response.aclose()  # unread rest: the transport closes the connection
        except httpx.TimeoutException as exc:
            raise HttpError("timeout", f"{where}: {describe_exception(exc)}") from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise HttpError("invalid_request", f"{where}: {describe_exception(exc)}") from exc
        except (httpx.RequestError, OSError) as exc:
            raise HttpError("network", f"{where}: {describe_exception(exc)}") from exc
        headers = response_headers(response.headers.multi_items())
        return RawResponse(response.status_code, headers, data)

    async def _read(self, response: httpx.Response) -> bytearray:
        """At most ``max_body_bytes + 1`` decoded bytes: one more says "truncated"."""
        limit = self.max_body_bytes + 1
        data = bytearray()
        chunks = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
        async with aclosing(chunks):
            async for chunk in chunks:
                data += chunk
                if len(data) >= limit:
                    break
        return data

    async def aclose(self) -> None:
        """Close the transport, whether it was supplied or made here (as ``httpx`` clients do)."""
        await self._transport.aclose()
