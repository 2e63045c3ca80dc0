"""The executor over any ``httpx.AsyncBaseTransport``: for tests (respx, ``httpx.MockTransport``)
and for comparing transports.

It calls the transport directly, not through ``httpx.AsyncClient``: no client cookie jar shared
between jobs, no proxies from the environment, no client-side redirect or auth logic. All of
that is :class:`~engine.http.base.BaseExecutor`'s, shared with the aiohttp executor.

The target is checked before each hop with :func:`~engine.http.ssrf.check_url`. With httpx's
own transport (no transport supplied) the request then goes to the first checked address, with
the original ``Host`` header and TLS server name, so a rebinding DNS server never gets a
second say. A supplied transport (a mock, respx) gets the URL as it is: it connects wherever it
likes. With a supplied transport, no supplied resolver and ``allow_private``, host names are not
resolved at all (a mock transport connects nowhere; IP literals and ``allowed_hosts`` names are
still checked).
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
from engine.http.ssrf import Resolver, TargetPolicy, check_url, parse_ip
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
        #: connect to the checked address (our own transport only)
        self._pin = transport is None
        self._resolve = resolver
        self._transport = transport or httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=False,
        )

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
        url, sent, extensions = str(hop.url), list(hop.headers.items()), {}
        if address is not None and self._pin:
            ip = parse_ip(address)
            url = str(hop.url.with_host(str(ip)))
            if not any(name.lower() == "host" for name, _ in sent):
                sent.insert(0, ("Host", hop.url.host_port_subcomponent or ""))
            extensions["sni_hostname"] = hop.url.raw_host or ""
        request = httpx.Request(
            hop.method, url, headers=sent, content=hop.content, extensions=extensions
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
