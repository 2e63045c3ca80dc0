"""A real HTTP server on 127.0.0.1 for tests: the target that tasks call.

It runs aiohttp.web on its own event loop in a background thread, on an ephemeral port, and
records what it receives, so tests assert on exact outgoing requests and on concurrency without
timing. Import the fixture into a conftest::

    from tests.integration.target_server import target_server  # noqa: F401

and use it::

    async def test_x(target_server: TargetServer) -> None:
        url = target_server.url("/json")
        ...
        assert target_server.requests[0].header("user-agent") == "jobqueue/0.1"
        assert target_server.max_in_flight <= 4

Endpoints (any method unless said):
    /json                      200 JSON ``{"ok": true, "items": [1, 2, 3]}``
    /text                      200 ``text/plain; charset=utf-8``
    /status/{code}             that status, JSON body (none for 204/304); ``?retry_after=N``
                               adds ``Retry-After: N``
    /flaky/{key}?fail=N        the first N requests per key answer 503 (``?retry_after=`` as
                               above), then 200 JSON ``{"key": ..., "count": n}``
    /slow?seconds=X            sleeps X seconds, then 200 JSON; a client disconnect cancels it;
                               ``&later_seconds=Y``: attempts after the first (the request's
                               ``X-JobQueue-Attempt`` header above 1) sleep Y seconds instead
    /big?bytes=N               streams N bytes of ``x`` (``text/plain``, Content-Length set)
    /binary?bytes=N            N bytes that are not UTF-8 (``application/octet-stream``)
    /gzip                      gzip-encoded JSON
    /multi-header              two ``X-Multi`` and two ``Set-Cookie`` headers
    /echo                      JSON of what arrived: method, path, raw_query, query (multi-dict
                               ``{key: [values]}``), headers (``[[name, value], ...]``), body
                               (JSON when it parses, else text, null when empty)
    /redirect?to=URL&status=S  redirect (default 302) to URL
    /redirect-chain/{n}        redirects n times, then /json
    /headers?Name=value        200 JSON ``{"ok": true}`` with each query pair as a response header

Run alone (for benchmarks, in its own process): ``python -m tests.integration.target_server
[--port P] [--no-record]`` prints ``READY <base url>`` and serves until stdin closes or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Self

import orjson
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

_CHUNK = b"x" * 65536


@dataclass(kw_only=True)
class RecordedRequest:
    """One request as the server saw it; ``outcome`` and ``bytes_sent`` change while it runs."""

    method: str
    path: str
    raw_query: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: "running", then "ok", "cancelled" (client went away) or "error"
    outcome: str = "running"
    #: body bytes written by streaming endpoints (/big)
    bytes_sent: int = 0
    #: client (address, port): the same port on two requests means a kept-alive connection
    peer: tuple[str, int] | None = None

    def header(self, name: str) -> str | None:
        """The first value of a header, whatever its case."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}

    def query_values(self, key: str) -> list[str]:
        return [v for k, v in self.query if k == key]


@dataclass
class ServerState:
    """What the handlers share with the test thread; every access holds ``cond``."""

    record: bool = True
    cond: threading.Condition = field(default_factory=threading.Condition)
    log: list[RecordedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    flaky_counts: dict[str, int] = field(default_factory=dict)

    def enter(self, entry: RecordedRequest) -> None:
        with self.cond:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.record:
                self.log.append(entry)
            self.cond.notify_all()

    def leave(self, entry: RecordedRequest, outcome: str) -> None:
        with self.cond:
            entry.outcome = outcome
            self.in_flight -= 1
            self.cond.notify_all()

    def count(self, key: str) -> int:
        with self.cond:
            self.flaky_counts[key] = self.flaky_counts.get(key, 0) + 1
            return self.flaky_counts[key]

    def reset(self) -> None:
        with self.cond:
            self.log.clear()
            self.flaky_counts.clear()
            self.max_in_flight = self.in_flight


_STATE = web.AppKey("state", ServerState)
_ENTRY = web.RequestKey("entry", RecordedRequest)


@web.middleware
async def _recorder(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[_STATE]
    entry = RecordedRequest(
        method=request.method,
        path=request.path,
        raw_query=request.raw_path.partition("?")[2],
        query=tuple(request.query.items()),
        headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
        body=await request.read(),
        peer=request.transport.get_extra_info("peername")[:2] if request.transport else None,
    )
    request[_ENTRY] = entry
    state.enter(entry)
    outcome = "error"
    try:
        response = await handler(request)
        outcome = "ok"
        return response
    except (asyncio.CancelledError, ConnectionResetError, BrokenPipeError):
        outcome = "cancelled"  # the client went away
        raise
    finally:
        state.leave(entry, outcome)


def _json(data: object, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(data), content_type="application/json", headers=headers
    )


def _retry_headers(request: web.Request) -> dict[str, str]:
    value = request.query.get("retry_after")
    return {"Retry-After": value} if value is not None else {}


async def _json_handler(request: web.Request) -> web.Response:
    return _json({"ok": True, "items": [1, 2, 3]})


async def _text(request: web.Request) -> web.Response:
    return web.Response(text="hello, world", content_type="text/plain", charset="utf-8")


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    if code in (204, 304) or code < 200:
        return web.Response(status=code, headers=_retry_headers(request))
    return _json({"status": code}, code, **_retry_headers(request))


async def _flaky(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    count = request.app[_STATE].count(key)
    if count <= int(request.query.get("fail", "1")):
        return _json({"key": key, "count": count}, 503, **_retry_headers(request))
    return _json({"key": key, "count": count})


async def _slow(request: web.Request) -> web.Response:
    seconds = float(request.query.get("seconds", "1"))
    later = request.query.get("later_seconds")
    if later is not None and int(request.headers.get("X-JobQueue-Attempt", "1")) > 1:
        seconds = float(later)
    await asyncio.sleep(seconds)
    return _json({"slept": seconds})


async def _big(request: web.Request) -> web.StreamResponse:
    total = int(request.query.get("bytes", "1048576"))
    entry = request[_ENTRY]
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
    response.content_length = total
    await response.prepare(request)
    while entry.bytes_sent < total:
        piece = _CHUNK[: total - entry.bytes_sent]
        await response.write(piece)
        entry.bytes_sent += len(piece)
    await response.write_eof()
    return response


async def _binary(request: web.Request) -> web.Response:
    size = int(request.query.get("bytes", "16"))
    data = (bytes(range(0x80, 0x100)) * (size // 128 + 1))[:size]
    return web.Response(body=data, content_type="application/octet-stream")


async def _gzip(request: web.Request) -> web.Response:
    body = gzip.compress(orjson.dumps({"compressed": True}))
    return web.Response(
        body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )


async def _multi_header(request: web.Request) -> web.Response:
    response = web.Response(text="multi")
    for name, value in (("X-Multi", "a"), ("X-Multi", "b"), ("Set-Cookie", "a=1"),
                        ("Set-Cookie", "b=2")):  # fmt: skip
        response.headers.add(name, value)
    return response


async def _echo(request: web.Request) -> web.Response:
    entry = request[_ENTRY]
    query: dict[str, list[str]] = {}
    for key, value in entry.query:
        query.setdefault(key, []).append(value)
    body: object = None
    if entry.body:
        try:
            body = orjson.loads(entry.body)
        except orjson.JSONDecodeError:
            body = entry.body.decode("utf-8", "replace")
    return _json(
        {
            "method": entry.method,
            "path": entry.path,
            "raw_query": entry.raw_query,
            "query": query,
            "headers": [list(pair) for pair in entry.headers],
            "body": body,
        }
    )


async def _redirect(request: web.Request) -> web.Response:
    status = int(request.query.get("status", "302"))
    return web.Response(status=status, headers={"Location": request.query["to"]})


async def _redirect_chain(request: web.Request) -> web.Response:
    left = int(request.match_info["n"])
    target = f"/redirect-chain/{left - 1}" if left > 1 else "/json"
    return web.Response(status=302, headers={"Location": target})


async def _headers(request: web.Request) -> web.Response:
    response = _json({"ok": True})
    for name, value in request.query.items():
        response.headers.add(name, value)
    return response


def build_app(state: ServerState) -> web.Application:
    app = web.Application(middlewares=[_recorder])
    app[_STATE] = state
    routes: list[tuple[str, Callable[[web.Request], object]]] = [
        ("/json", _json_handler),
        ("/text", _text),
        ("/status/{code}", _status),
        ("/flaky/{key}", _flaky),
        ("/slow", _slow),
        ("/big", _big),
        ("/binary", _binary),
        ("/gzip", _gzip),
        ("/multi-header", _multi_header),
        ("/echo", _echo),
        ("/redirect", _redirect),
        ("/redirect-chain/{n}", _redirect_chain),
        ("/headers", _headers),
    ]
    for path, handler in routes:
        app.router.add_route("*", path, handler)  # type: ignore[arg-type]
    return app


def _runner(state: ServerState) -> web.AppRunner:
    # handler_cancellation: a client that disconnects cancels its handler, as tests expect
    return web.AppRunner(
        build_app(state), handler_cancellation=True, shutdown_timeout=1.0, access_log=None
    )


class TargetServer:
    """The server in a background thread; ``with TargetServer() as server:`` or the fixture."""

    def __init__(self, *, record: bool = True) -> None:
        self.state = ServerState(record=record)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (``"/json"``, ``"/slow?seconds=5"``) on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received since the start or the last ``reset()``."""
        with self.state.cond:
            return [replace(entry) for entry in self.state.log]

    @property
    def in_flight(self) -> int:
        with self.state.cond:
            return self.state.in_flight

    @property
    def max_in_flight(self) -> int:
        """Most requests being handled at the same time (since start or ``reset()``)."""
        with self.state.cond:
            return self.state.max_in_flight

    def reset(self) -> None:
        """Forget the log, the /flaky counters and the in-flight high-water mark."""
        self.state.reset()

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being handled (e.g. a cancelled call's handler ended)."""
        await self.wait_until(lambda: self.state.in_flight == 0, timeout)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait, without blocking the caller's event loop, until ``predicate()`` holds.

        ``predicate`` runs with the state lock held, each time a request starts or finishes.
        """

        def wait() -> bool:
            with self.state.cond:
                return self.state.cond.wait_for(predicate, timeout)

        if not await asyncio.to_thread(wait):
            raise TimeoutError(f"target server: condition not reached within {timeout} s")

    def start(self) -> Self:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="target-server", daemon=True
        )
        self._thread.start()
        if not ready.wait(10) or self._error is not None:
            raise RuntimeError("target server did not start") from self._error
        return self

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        runner = _runner(self.state)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
        except BaseException as exc:
            self._error = exc
            ready.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@pytest.fixture
def target_server() -> Iterator[TargetServer]:
    """A fresh :class:`TargetServer` on 127.0.0.1 for one test."""
    with TargetServer() as server:
        yield server


async def _serve_forever(port: int, record: bool) -> None:
    runner = _runner(ServerState(record=record))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(f"READY http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stopped.set)
    try:
        await stopped.wait()
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="JobQueue's local test target server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-record", action="store_true", help="keep no request log")
    args = parser.parse_args()
    serve = _serve_forever(args.port, not args.no_record)
    try:
        try:
            import uvloop  # optional speed-up, for benchmarks
        except ImportError:
            asyncio.run(serve)
        else:
            uvloop.run(serve)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
