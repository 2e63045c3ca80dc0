"""What both executors share: request preparation, the attempt deadline, redirects, the cap.

A subclass implements only ``_send_once`` (one hop, no redirects: check the target, send, read
at most ``max_body_bytes + 1`` bytes, map its library's errors onto :class:`HttpError`) and
returns a :class:`RawResponse`; everything else is here, so the two transports cannot drift
apart in anything but speed.
"""

from __future__ import annotations

import asyncio
import base64
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from yarl import URL

from engine.http.codec import decode_body, encode_body, request_headers
from engine.http.messages import HttpError, HttpRequest, HttpResponse
from engine.http.ssrf import TargetPolicy, check_addresses, parse_ip
from engine.http.urls import describe_target, merge_url_params, origin, parse_target_url
from engine.masking import SECRET_HEADERS

MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_BODY_HEADERS = frozenset({"content-type", "content-encoding", "content-language"})


class Executor(Protocol):
    """Sends one :class:`HttpRequest`; the worker holds one per process."""

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Hop:
    """One request on the wire: the original one, or a redirect of it."""

    method: str
    url: URL
    headers: dict[str, str]
    content: bytes | None
    #: lower-case names of the secret headers: never carried to another origin on a redirect
    secret: frozenset[str] = SECRET_HEADERS


@dataclass(frozen=True, slots=True)
class RawResponse:
    """One hop's answer before decoding: ``data`` holds at most ``max_body_bytes + 1`` bytes."""

    status: int
    #: as :func:`~engine.http.codec.response_headers` gives them
    headers: dict[str, str]
    data: bytes | bytearray


def prepare(request: HttpRequest) -> Hop:
    """Check and encode a request; every problem raises ``HttpError("invalid_request")``."""
    method = request.method.upper()
    if not method.isascii() or not method.isalpha():
        raise HttpError("invalid_request", f"invalid HTTP method {request.method!r}")
    if not request.timeout > 0:
        raise HttpError("invalid_request", f"timeout must be positive, got {request.timeout!r}")
    url = parse_target_url(merge_url_params(request.url, request.params))
    content, content_type = encode_body(request.body)
    headers = request_headers(request.headers, content_type=content_type)
    if url.raw_user is not None:
        if not any(name.lower() == "authorization" for name in headers):
            token = base64.b64encode(f"{url.user or ''}:{url.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        url = url.with_user(None)
    secret = SECRET_HEADERS | {name.lower() for name in request.secret_headers}
    return Hop(method=method, url=url, headers=headers, content=content, secret=secret)


def redirect_hop(hop: Hop, status: int, location: str) -> Hop:
    """The request that follows ``hop`` after a redirect, as browsers and httpx do it.

    303 (and 301/302 after a POST) turn into a body-less GET; secret headers (credentials, cookies,
    API keys, configured and task-marked names) are not carried to another origin (scheme, host
    or port differ); the new URL passes the same checks as the first one.
    """
    try:
        target = hop.url.join(URL(location))
    except ValueError as exc:
        raise HttpError("invalid_request", f"redirect to a malformed URL: {exc}") from exc
    url = parse_target_url(target).with_user(None)
    method, content = hop.method, hop.content
    drop: set[str] = set()
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, content = "GET", None
        drop |= _BODY_HEADERS
    if origin(url) != origin(hop.url):
        drop |= hop.secret
    headers = {k: v for k, v in hop.headers.items() if k.lower() not in drop}
    return Hop(method=method, url=url, headers=headers, content=content, secret=hop.secret)


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` of a library exception, for ``HttpError`` messages."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class BaseExecutor(ABC):
    """The shared ``send``: deadline, redirects, body parsing; subclasses send one hop."""

    def __init__(self, *, max_body_bytes: int, target_policy: TargetPolicy) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        self.max_body_bytes = max_body_bytes
        self.target_policy = target_policy
        #: IP literal -> "" (allowed) or why it is blocked; the policy never changes
        self._literal_verdicts: dict[str, str] = {}

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request``; return the response or raise :class:`HttpError`.

        The whole attempt runs under one deadline of ``request.timeout`` seconds. Cancelling the
        caller aborts at once and closes the connection in use (an unread body is never put back
        in the pool).
        """
        hop = prepare(request)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(request.timeout):
                raw = await self._follow(hop, follow=request.follow_redirects)
        except TimeoutError as exc:
            raise HttpError(
                "timeout",
                f"{hop.method} {describe_target(hop.url)}: no complete response within "
                f"{request.timeout:g} s",
            ) from exc
        return self._response(raw, duration_ms=(time.perf_counter() - started) * 1000)

    async def _follow(self, hop: Hop, *, follow: bool) -> RawResponse:
        for _ in range(MAX_REDIRECTS + 1):
            raw = await self._send_once(hop)
            location = raw.headers.get("location")
            if not (follow and raw.status in REDIRECT_STATUSES and location):
                return raw
            hop = redirect_hop(hop, raw.status, location)
        raise HttpError("invalid_request", f"more than {MAX_REDIRECTS} redirects")

    @abstractmethod
    async def _send_once(self, hop: Hop) -> RawResponse:
        """Send one hop, no redirects; read at most ``max_body_bytes + 1`` bytes of body."""

    def _check_literal(self, host: str) -> bool:
        """Check ``host`` if it is an IP literal (verdicts cached); ``False`` if it is a name."""
        verdict = self._literal_verdicts.get(host)
        if verdict is None:
            if parse_ip(host) is None:
                return False
            try:
                check_addresses(host, [host], self.target_policy)
                verdict = ""
            except HttpError as exc:
                verdict = exc.message
            if len(self._literal_verdicts) >= 4096:
                self._literal_verdicts.clear()
            self._literal_verdicts[host] = verdict
        if verdict:
            raise HttpError("blocked_target", verdict)
        return True

    def _response(self, raw: RawResponse, *, duration_ms: float) -> HttpResponse:
        """The response from the bytes read: cut at the cap, decoded."""
        data = raw.data
        truncated = len(data) > self.max_body_bytes
        kept = bytes(data[: self.max_body_bytes] if truncated else data)
        content_type = raw.headers.get("content-type")
        body, is_base64 = decode_body(kept, content_type, truncated=truncated)
        return HttpResponse(
            status_code=raw.status,
            headers=raw.headers,
            body=body,
            truncated=truncated,
            size=len(kept),
            duration_ms=duration_ms,
            body_base64=is_base64,
        )

    @abstractmethod
    async def aclose(self) -> None:
        """Close every pooled connection; the executor cannot be used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
