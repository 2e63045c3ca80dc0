"""The executor over any ``httpx.AsyncBaseTransport``: for tests (respx, ``httpx.MockTransport``)
and for comparing transports.

It calls the transport directly, not through ``httpx.AsyncClient``: no client cookie jar shared
between jobs, no proxies from the environment, no client-side redirect or auth logic. All of
that is :class:`~engine.http.base.BaseExecutor`'s, shared with the aiohttp executor.

The target is checked before each hop with :func:`~engine.http.ssrf.check_url`. With httpx's
own transport (no transport supplied) the connection then goes to the checked address: the
transport's network backend (:class:`PinnedBackend`) connects to the address checked for the
host instead of resolving it again, so a rebinding DNS server never gets a second say, while
the URL, ``Host`` header, TLS server name and connection pool keep the host name. A supplied
transport (a mock, respx) connects wherever it likes. With a supplied transport, no supplied
resolver and ``allow_private``, host names are not resolved at all (a mock transport connects
nowhere; IP literals and ``allowed_hosts`` names are still checked).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import cast

import httpcore
import httpx
from yarl import URL

from engine.http.base import BaseExecutor, Hop, RawResponse, describe_exception
from engine.http.codec import response_headers
from engine.http.messages import HttpError
from engine.http.ssrf import Resolver, TargetPolicy, check_url
from engine.http.urls import describe_target


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend that connects to the checked address of a host name."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        #: host name (as in the URL) -> the address the guard checked for it last
        self.pins: dict[str, str] = {}

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(
            self.pins.get(host, host),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _pinned_transport(max_connections: int) -> tuple[httpx.AsyncHTTPTransport, PinnedBackend]:
    """httpx's own transport whose connection pool connects through a :class:`PinnedBackend`."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    backend = PinnedBackend()
    transport._pool = httpcore.AsyncConnectionPool(  # the pool httpx builds, plus our backend
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        network_backend=backend,
    )
    return transport, backend


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
        self._resolve = resolver
        #: our own transport connects to the checked addresses (a supplied one as it likes)
        self._backend: PinnedBackend | None = None
        if transport is None:
            transport, self._backend = _pinned_transport(max_connections)
        self._transport = transport

    async def _check_target(self, url: URL) -> str | None:
        """Check the hop's target; the address to connect to when it was resolved here."""
        host = url.raw_host or ""
        policy = self.target_policy
        if self._check_literal(host):
            return None
        if self._skip_dns and (not policy.allowed_hosts or policy.host_allowed(host)):
            return None
        checked = await check_url(url, policy, resolve=self._resolve)
        return checked.addresses[0]

    async def _send_once(self, hop: Hop) -> RawResponse:
        address = await self._check_target(hop.url)
        if address is not None and self._backend is not None:
            self._backend.pins[hop.url.raw_host or ""] = address
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
