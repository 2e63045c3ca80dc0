"""HTTP execution of one task attempt, behind a small interface so the transport is measured,
not assumed.

Why aiohttp: on this 2-core machine httpx's default ``AsyncClient`` pool does a few hundred
requests/s and gets slower as concurrency grows; httpx over ``httpx-aiohttp``'s transport does
several times that, and raw aiohttp more again (``python -m benchmarks.transport_compare``
prints the figures for both executors and the bare clients). So the production executor is raw
aiohttp: one ``ClientSession`` per worker process, a ``TCPConnector`` sized to
``JOBQUEUE_CONCURRENCY``, keep-alive, and a resolver that enforces the target policy and pins
each connection to the address it checked. The httpx executor takes any
``httpx.AsyncBaseTransport`` so unit tests can see the exact outgoing request (respx,
``httpx.MockTransport``); it checks targets before sending and, with its own transport, pins the
connection too. Either executor is the guard for every outgoing request (``ssrf.check_url``).
Everything but the hop itself (deadline, redirects, header defaults, body cap and parsing) is
shared code in ``base.py``, so both executors put the same bytes on the wire and return equal
responses.

An executor belongs to the event loop of its first ``send`` (aiohttp sessions are loop-bound);
``aclose()`` it on that loop.

Errors: an attempt either returns an :class:`HttpResponse` (any status) or raises::

    HttpError                  .kind          .retryable
    ├── network                connect refused/reset, DNS failure, broken body    True
    ├── timeout                no complete response within HttpRequest.timeout    True
    ├── blocked_target         the target policy refused the host / address       False
    └── invalid_request        bad URL, scheme, method, header, body; >10 redirects  False

A ``send`` that is cancelled raises ``CancelledError`` at once and closes its connection.
"""

from engine.http.base import MAX_REDIRECTS, Executor
from engine.http.codec import USER_AGENT, retry_after_seconds
from engine.http.factory import create_executor
from engine.http.messages import HttpError, HttpErrorKind, HttpRequest, HttpResponse
from engine.http.ssrf import (
    AddressClass,
    CheckedTarget,
    Resolver,
    TargetPolicy,
    check_url,
    classify_address,
)
from engine.http.urls import merge_url_params

__all__ = [
    "MAX_REDIRECTS",
    "USER_AGENT",
    "AddressClass",
    "CheckedTarget",
    "Executor",
    "HttpError",
    "HttpErrorKind",
    "HttpRequest",
    "HttpResponse",
    "Resolver",
    "TargetPolicy",
    "check_url",
    "classify_address",
    "create_executor",
    "merge_url_params",
    "retry_after_seconds",
]
