"""The records an executor takes and gives back, and the one error it raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: why an attempt produced no response: ``network`` and ``timeout`` are worth retrying,
#: ``blocked_target`` (the target policy refused the address) and ``invalid_request`` are not
HttpErrorKind = Literal["network", "timeout", "blocked_target", "invalid_request"]

RETRYABLE_KINDS: frozenset[str] = frozenset({"network", "timeout"})


@dataclass(frozen=True, kw_only=True)
class HttpRequest:
    """One HTTP call, already rendered: what the worker hands to an executor."""

    #: HTTP method; sent upper-cased
    method: str
    #: ``http`` or ``https`` URL; its own query string is kept and ``params`` are appended to it
    url: str
    #: request headers; they override the defaults (``User-Agent: jobqueue/0.1``, ``Accept``,
    #: ``Accept-Encoding``) whatever their case; ``Content-Length`` is always computed
    headers: Mapping[str, str] = field(default_factory=dict)
    #: query parameters: str / int / float / bool / None or a list of those (see
    #: :func:`engine.http.urls.merge_url_params`)
    params: Mapping[str, object] = field(default_factory=dict)
    #: JSON value: ``None`` sends no body, a ``str`` is sent as-is (``text/plain; charset=utf-8``
    #: unless a Content-Type is given), anything else is JSON (``application/json`` unless given)
    body: object = None
    #: seconds for the whole attempt: resolve + connect + send + read the full body, redirects
    #: included
    timeout: float
    #: follow 301/302/303/307/308 (at most 10 hops, each hop checked by the target policy)
    follow_redirects: bool = False
    #: more header names (any case) that are secret besides
    #: :data:`engine.masking.SECRET_HEADERS`: dropped on a redirect to another origin
    secret_headers: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True)
class HttpResponse:
    """What came back from one attempt, with the body read up to the executor's byte cap."""

    status_code: int
    #: lower-cased names; a header sent several times has its values joined with ``", "``
    headers: dict[str, str]
    #: parsed JSON when the Content-Type is JSON (``application/json``, ``*/*+json``) and it
    #: parses; else text decoded by the charset (``errors="replace"``); ``None`` when empty;
    #: bytes that are not text (no textual Content-Type and not UTF-8) as a base64 string, with
    #: ``body_base64`` set
    body: object
    #: the body was longer than the cap and was cut there (the rest was never read)
    truncated: bool
    #: bytes of body read, after content decoding (gzip / deflate); at most the cap
    size: int
    #: wall time of the whole attempt, redirects included
    duration_ms: float
    #: ``body`` is the base64 text of binary bytes
    body_base64: bool = False


class HttpError(Exception):
    """An attempt that produced no HTTP response.

    ``kind`` says why (see :data:`HttpErrorKind`); ``str(error)`` says what happened and where,
    naming host and address but never the query string (it may hold credentials).
    """

    def __init__(self, kind: HttpErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: HttpErrorKind = kind
        self.message = message

    @property
    def retryable(self) -> bool:
        """Network errors and timeouts may succeed on a later attempt; the rest never will."""
        return self.kind in RETRYABLE_KINDS

    def __repr__(self) -> str:
        return f"HttpError(kind={self.kind!r}, message={self.message!r})"
