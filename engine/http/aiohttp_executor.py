"""The production executor: one aiohttp ``ClientSession`` per worker process.

The session's connector is sized to the worker's concurrency and keeps connections alive. Its
resolver is :class:`GuardedResolver`, which checks every address a host resolves to and hands
the connector only those, so the connection goes to exactly the address that was checked (no
second lookup for a rebinding DNS server to answer differently). IP literals never reach a
resolver in aiohttp, so they are checked before each hop instead.
"""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from engine.http.base import BaseExecutor, Hop, RawResponse, describe_exception
from engine.http.codec import response_headers
from engine.http.messages import HttpError
from engine.http.ssrf import Resolver, TargetPolicy, check_addresses
from engine.http.urls import describe_target

_READ_CHUNK = 1 << 16
#: the body's Content-Type is set by ``prepare`` (or the caller); never guessed by aiohttp
_NO_AUTO_HEADERS = frozenset({"Content-Type"})


class GuardedResolver(AbstractResolver):
    """Resolve, check every address against the policy, return only checked addresses."""

    def __init__(self, policy: TargetPolicy, lookup: Resolver | None = None) -> None:
        self._policy = policy
        self._lookup = lookup
        self._system: AbstractResolver | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._lookup is not None:
            results = [
                _result(host, address, port)
                for address in await self._lookup(host)
                if family == socket.AF_UNSPEC or _family(address) == family
            ]
        else:
            if self._system is None:
                self._system = DefaultResolver()
            results = await self._system.resolve(host, port, family)
        check_addresses(host, [r["host"] for r in results], self._policy)
        return results

    async def close(self) -> None:
        if self._system is not None:
            await self._system.close()


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _result(host: str, address: str, port: int) -> ResolveResult:
    return ResolveResult(
        hostname=host,
        host=address,
        port=port,
        family=_family(address),
        proto=0,
        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    )


class AiohttpExecutor(BaseExecutor):
    """Raw aiohttp: the fastest Python client measured (see ``engine.http``)."""

    def __init__(
        self,
        *,
        max_connections: int,
        max_body_bytes: int,
        target_policy: TargetPolicy,
        resolver: Resolver | None = None,
    ) -> None:
        super().__init__(max_body_bytes=max_body_bytes, target_policy=target_policy)
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self._max_connections = max_connections
        self._lookup = resolver
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._closed = False

    def _client(self) -> aiohttp.ClientSession:
        # created on first use: a session belongs to the running event loop
        if self._closed:
            raise RuntimeError("executor is closed")
        if self._session is None:
            self._resolver = GuardedResolver(self.target_policy, self._lookup)
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, resolver=self._resolver
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # jobs must not share cookies
                timeout=aiohttp.ClientTimeout(total=None),  # the deadline is BaseExecutor's
                trust_env=False,  # a proxy would connect to an address we never checked
                skip_auto_headers=_NO_AUTO_HEADERS,
                auto_decompress=True,
            )
        return self._session

    async def _send_once(self, hop: Hop) -> RawResponse:
        self._check_literal(hop.url.raw_host or "")  # names are checked by GuardedResolver
        session = self._client()
        try:
            async with session.request(
                hop.method,
                hop.url,
                headers=hop.headers,
                data=hop.content,
                allow_redirects=False,
            ) as resp:
                data = await self._read(resp)
                if len(data) > self.max_body_bytes:
                    resp.close()  # the rest stays unread: close, never pool this connection
                return RawResponse(resp.status, response_headers(resp.headers.items()), data)
        except HttpError:
            raise
        except TimeoutError as exc:
            raise HttpError("timeout", f"{_where(hop)}: {describe_exception(exc)}") from exc
        except (aiohttp.InvalidURL, ValueError) as exc:
            raise HttpError("invalid_request", f"{_where(hop)}: {describe_exception(exc)}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise HttpError("network", f"{_where(hop)}: {describe_exception(exc)}") from exc

    async def _read(self, resp: aiohttp.ClientResponse) -> bytearray:
        """At most ``max_body_bytes + 1`` bytes: one more than the cap says "truncated"."""
        limit = self.max_body_bytes + 1
        data = bytearray()
        while len(data) < limit:
            chunk = await resp.content.read(min(_READ_CHUNK, limit - len(data)))
            if not chunk:
                break
            data += chunk
        return data

    async def aclose(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        if self._resolver is not None:
            await self._resolver.close()


def _where(hop: Hop) -> str:
    return f"{hop.method} {describe_target(hop.url)}"
