"""Outgoing requests against real servers on 127.0.0.1: secret headers on redirects, and the
connection pinned to the address the guard checked (DNS rebinding), with both executors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import pytest

from engine.http import Executor, HttpError, HttpRequest, TargetPolicy, create_executor
from tests.integration.target_server import TargetServer

KINDS = ["aiohttp", "httpx"]
LOCAL = TargetPolicy(allow_private=True)

SECRETS = {
    "Authorization": "Bearer auth-secret",
    "Proxy-Authorization": "Basic proxy-secret",
    "Cookie": "session=cookie-secret",
    "X-Api-Key": "apikey-secret",
    "X-Configured-Token": "configured-secret",
    "X-Signature": "task-marked-secret",
}
PLAIN = {"X-Trace": "kept-on-every-hop"}


@pytest.fixture
def second_server() -> Iterator[TargetServer]:
    """Another origin: the same host, another port."""
    with TargetServer() as server:
        yield server


@pytest.fixture(params=KINDS)
async def executor(request: pytest.FixtureRequest) -> AsyncIterator[Executor]:
    made = create_executor(
        kind=request.param, max_connections=4, max_body_bytes=1 << 20, target_policy=LOCAL
    )
    yield made
    await made.aclose()


def redirect_request(first: TargetServer, to: str) -> HttpRequest:
    return HttpRequest(
        method="GET",
        url=first.url(f"/redirect?to={quote(to, safe='')}"),
        headers={**SECRETS, **PLAIN},
        timeout=10.0,
        follow_redirects=True,
        # the configured names and the task's marked ones, as the worker passes them
        secret_headers=frozenset({"x-configured-token", "X-Signature"}),
    )


async def test_cross_origin_redirect_drops_every_secret_header(
    executor: Executor, target_server: TargetServer, second_server: TargetServer
) -> None:
    response = await executor.send(redirect_request(target_server, second_server.url("/echo")))
    assert response.status_code == 200
    first = target_server.requests[0]
    assert all(first.header(name) == value for name, value in SECRETS.items())
    arrived = second_server.requests[0]
    assert arrived.path == "/echo"
    assert {name.lower() for name in SECRETS}.isdisjoint(arrived.header_names())
    assert arrived.header("X-Trace") == "kept-on-every-hop"


async def test_same_origin_redirect_keeps_the_secret_headers(
    executor: Executor, target_server: TargetServer
) -> None:
    await executor.send(redirect_request(target_server, target_server.url("/echo")))
    arrived = target_server.requests[1]
    assert arrived.path == "/echo"
    assert all(arrived.header(name) == value for name, value in SECRETS.items())


class Rebinder:
    """A DNS server that answers the allowed address first, then a blocked one."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, host: str) -> Sequence[str]:
        self.calls += 1
        return ["127.0.0.1"] if self.calls == 1 else ["10.255.255.1"]


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_is_pinned_to_the_checked_address(
    kind: Any, target_server: TargetServer
) -> None:
    # "rebind.test" exists only in the stub: a second lookup by the transport would fail (no such
    # name) or go to the blocked address; the call succeeds only on the address that was checked
    rebinder = Rebinder()
    executor = create_executor(
        kind=kind,
        max_connections=1,
        max_body_bytes=1024,
        target_policy=TargetPolicy(allowed_hosts=("127.0.0.1/32",)),
        resolver=rebinder,
    )
    async with executor:  # type: ignore[attr-defined]
        url = f"http://rebind.test:{target_server.port}/json"
        result = await executor.send(HttpRequest(method="GET", url=url, timeout=10.0))
        assert result.status_code == 200
        assert rebinder.calls == 1
        assert target_server.requests[0].header("host") == f"rebind.test:{target_server.port}"
        if kind == "httpx":  # checks before every hop: the rebound answer is refused
            with pytest.raises(HttpError) as info:
                await executor.send(HttpRequest(method="GET", url=url, timeout=10.0))
            assert info.value.kind == "blocked_target"
            assert "10.255.255.1 (private)" in str(info.value)
    assert len(target_server.requests) == 1
