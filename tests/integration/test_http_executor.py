"""Both executors against a real HTTP server on 127.0.0.1: same behaviour, real sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from engine.http import (
    Executor,
    HttpError,
    HttpRequest,
    HttpResponse,
    TargetPolicy,
    create_executor,
)
from tests.integration.target_server import TargetServer

KINDS = ["aiohttp", "httpx"]
LOCAL = TargetPolicy(allow_private=True)
MakeExecutor = Callable[..., Executor]


@pytest.fixture(params=KINDS)
async def make_executor(request: pytest.FixtureRequest) -> AsyncIterator[MakeExecutor]:
    """Build executors of one kind (the test runs once per kind); all closed afterwards."""
    made: list[Executor] = []

    def make(**options: Any) -> Executor:
        settings: dict[str, Any] = {
            "max_connections": 4,
            "max_body_bytes": 1 << 20,
            "target_policy": LOCAL,
            **options,
        }
        executor = create_executor(kind=request.param, **settings)
        made.append(executor)
        return executor

    yield make
    for executor in made:
        await executor.aclose()


def get(url: str, **fields: Any) -> HttpRequest:
    return HttpRequest(**{"method": "GET", "url": url, "timeout": 10.0, **fields})


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_json_response(make_executor: MakeExecutor, target_server: TargetServer) -> None:
    result = await make_executor().send(get(target_server.url("/json")))
    assert result.status_code == 200
    assert result.body == {"ok": True, "items": [1, 2, 3]}
    assert result.headers["content-type"] == "application/json"
    assert (result.truncated, result.size, result.body_base64) == (False, 27, False)
    assert result.duration_ms > 0


async def test_text_response(make_executor: MakeExecutor, target_server: TargetServer) -> None:
    result = await make_executor().send(get(target_server.url("/text")))
    assert (result.status_code, result.body) == (200, "hello, world")


async def test_exact_request_on_the_wire(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    request = HttpRequest(
        method="POST",
        url=target_server.url("/echo?a=1&a=2&sp=x%20y"),
        headers={"X-JobQueue-Job": "j_1", "Idempotency-Key": "k"},
        params={"a": 3, "tag": ["x", "y"], "flag": False, "none": None},
        body={"message": "hello"},
        timeout=10,
    )
    result = await make_executor().send(request)
    assert isinstance(result.body, dict)
    assert result.body["query"] == {"a": ["1", "2", "3"], "sp": ["x y"], "tag": ["x", "y"],
                                    "flag": ["false"]}  # fmt: skip
    assert result.body["raw_query"] == "a=1&a=2&sp=x%20y&a=3&tag=x&tag=y&flag=false"
    assert result.body["body"] == {"message": "hello"}
    [seen] = target_server.requests
    assert seen.method == "POST"
    assert seen.header_names() == {
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "x-jobqueue-job",
        "idempotency-key",
        "content-type",
        "content-length",
    }
    assert seen.header("user-agent") == "jobqueue/0.1"
    assert seen.header("content-type") == "application/json"
    assert seen.body == b'{"message":"hello"}'


async def test_post_without_body_sends_no_content_type(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    await make_executor().send(get(target_server.url("/echo"), method="POST"))
    [seen] = target_server.requests
    assert seen.header("content-length") == "0"
    assert seen.header("content-type") is None


@pytest.mark.parametrize(
    ("path", "status", "body", "base64"),
    [
        ("/status/204", 204, None, False),
        ("/status/503?retry_after=7", 503, {"status": 503}, False),
        ("/gzip", 200, {"compressed": True}, False),
        ("/binary?bytes=4", 200, "gIGCgw==", True),
        ("/multi-header", 200, "multi", False),
    ],
)
async def test_response_shapes(
    make_executor: MakeExecutor,
    target_server: TargetServer,
    path: str,
    status: int,
    body: object,
    base64: bool,
) -> None:
    result = await make_executor().send(get(target_server.url(path)))
    assert (result.status_code, result.body, result.body_base64) == (status, body, base64)
    if path.startswith("/status/503"):
        assert result.headers["retry-after"] == "7"
    if path == "/multi-header":
        assert result.headers["x-multi"] == "a, b"
        assert result.headers["set-cookie"] == "a=1, b=2"


async def test_both_executors_give_the_same_response(target_server: TargetServer) -> None:
    paths = ["/json", "/text", "/status/404", "/binary?bytes=9", "/big?bytes=3000", "/gzip"]
    results: dict[str, list[HttpResponse]] = {}
    for kind in KINDS:
        executor = create_executor(
            kind=kind,  # type: ignore[arg-type]
            max_connections=2,
            max_body_bytes=2048,
            target_policy=LOCAL,
        )
        async with executor:  # type: ignore[attr-defined]
            results[kind] = [await executor.send(get(target_server.url(p))) for p in paths]

    def comparable(r: HttpResponse) -> tuple[object, ...]:
        headers = {k: v for k, v in r.headers.items() if k != "date"}
        return r.status_code, headers, r.body, r.truncated, r.size, r.body_base64

    assert [comparable(r) for r in results["aiohttp"]] == [comparable(r) for r in results["httpx"]]


async def test_big_body_cut_at_the_cap_without_reading_it_all(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    total = 1 << 30  # 1 GiB: reading it all would take far longer than the bound below
    executor = make_executor(max_body_bytes=64 * 1024)
    result = await asyncio.wait_for(
        executor.send(get(target_server.url(f"/big?bytes={total}"))), timeout=10
    )
    assert (result.truncated, result.size) == (True, 64 * 1024)
    assert result.body == "x" * (64 * 1024)
    await target_server.wait_idle()  # the server saw the connection close
    [seen] = target_server.requests
    assert seen.outcome == "cancelled"
    assert seen.bytes_sent < total // 8
    again = await executor.send(get(target_server.url("/json")))  # the pool still works
    assert again.status_code == 200


async def test_keep_alive_reuses_one_connection(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    executor = make_executor()
    for _ in range(5):
        await executor.send(get(target_server.url("/json")))
    assert len({seen.peer for seen in target_server.requests}) == 1


async def test_connections_bounded_by_max_connections(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    executor = make_executor(max_connections=2)
    calls = [executor.send(get(target_server.url("/slow?seconds=0.05"))) for _ in range(8)]
    results = await asyncio.gather(*calls)
    assert all(r.status_code == 200 for r in results)
    assert 1 <= target_server.max_in_flight <= 2


async def test_timeout(make_executor: MakeExecutor, target_server: TargetServer) -> None:
    executor = make_executor()
    with pytest.raises(HttpError) as info:
        await executor.send(get(target_server.url("/slow?seconds=30"), timeout=0.3))
    assert info.value.kind == "timeout"
    assert info.value.retryable
    assert "within 0.3 s" in str(info.value)
    await target_server.wait_idle()  # the connection was closed, the handler cancelled
    assert target_server.requests[0].outcome == "cancelled"


async def test_connection_refused(make_executor: MakeExecutor) -> None:
    port = free_port()
    with pytest.raises(HttpError) as info:
        await make_executor().send(get(f"http://127.0.0.1:{port}/"))
    assert info.value.kind == "network"
    assert info.value.retryable
    assert f"127.0.0.1:{port}" in str(info.value)


async def test_cancellation_aborts_promptly_and_releases_the_connection(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    executor = make_executor()
    call = asyncio.create_task(
        executor.send(get(target_server.url("/slow?seconds=60"), timeout=120))
    )
    await target_server.wait_until(lambda: target_server.state.in_flight == 1)
    call.cancel()
    await asyncio.wait_for(asyncio.wait([call]), timeout=1.0)
    assert call.cancelled()
    await target_server.wait_idle()
    assert target_server.requests[0].outcome == "cancelled"
    again = await executor.send(get(target_server.url("/json")))
    assert again.status_code == 200


async def test_redirect_followed_only_when_asked(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    executor = make_executor()
    url = target_server.url("/redirect?to=/json")
    first = await executor.send(get(url))
    assert (first.status_code, first.headers["location"]) == (302, "/json")
    followed = await executor.send(get(url, follow_redirects=True))
    assert (followed.status_code, followed.body) == (200, {"ok": True, "items": [1, 2, 3]})
    assert [r.path for r in target_server.requests] == ["/redirect", "/redirect", "/json"]


async def test_redirect_hops_are_capped(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    executor = make_executor()
    ten = await executor.send(get(target_server.url("/redirect-chain/10"), follow_redirects=True))
    assert ten.status_code == 200
    with pytest.raises(HttpError, match="more than 10 redirects") as info:
        await executor.send(get(target_server.url("/redirect-chain/11"), follow_redirects=True))
    assert info.value.kind == "invalid_request"


async def test_loopback_blocked_unless_allow_private(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    with pytest.raises(HttpError) as info:
        await make_executor(target_policy=TargetPolicy()).send(get(target_server.url("/json")))
    assert info.value.kind == "blocked_target"
    assert "127.0.0.1 (loopback)" in str(info.value)
    assert target_server.requests == []
    allowed = await make_executor(target_policy=LOCAL).send(get(target_server.url("/json")))
    assert allowed.status_code == 200


async def test_redirect_into_loopback_is_blocked(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    # the first hop is allowed through a CIDR naming it; the hop it redirects to is not
    policy = TargetPolicy(allowed_hosts=("127.0.0.1/32",))
    executor = make_executor(target_policy=policy)
    target = f"http://[::1]:{target_server.port}/json"
    url = target_server.url(f"/redirect?to={target}")
    with pytest.raises(HttpError) as info:
        await executor.send(get(url, follow_redirects=True))
    assert info.value.kind == "blocked_target"
    assert "::1 (loopback)" in str(info.value)
    assert [r.path for r in target_server.requests] == ["/redirect"]


def fake_dns(table: dict[str, list[str]]) -> Callable[[str], Any]:
    async def resolve(host: str) -> Sequence[str]:
        return table[host]

    return resolve


async def test_aiohttp_connects_to_the_address_it_checked(target_server: TargetServer) -> None:
    # "target.test" exists only in the guard's resolver: the connection can only have gone to
    # the address the guard returned (both executors: tests/integration/test_outgoing_guard.py)
    executor = create_executor(
        max_connections=1,
        max_body_bytes=1024,
        target_policy=LOCAL,
        resolver=fake_dns({"target.test": ["127.0.0.1"]}),
    )
    async with executor:  # type: ignore[attr-defined]
        result = await executor.send(get(f"http://target.test:{target_server.port}/json"))
    assert result.status_code == 200
    assert target_server.requests[0].header("host") == f"target.test:{target_server.port}"


async def test_host_name_resolving_to_loopback_is_blocked(
    make_executor: MakeExecutor, target_server: TargetServer
) -> None:
    resolver = fake_dns({"innocent.test": ["127.0.0.1"]})
    executor = make_executor(resolver=resolver, target_policy=TargetPolicy())
    with pytest.raises(HttpError) as info:
        await executor.send(get(f"http://innocent.test:{target_server.port}/json"))
    assert info.value.kind == "blocked_target"
    assert "'innocent.test' resolves to 127.0.0.1 (loopback)" in str(info.value)
    assert target_server.requests == []
