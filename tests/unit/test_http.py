"""The HTTP executor without a network: httpx.MockTransport / respx behind the httpx executor,
and the pure functions (query merging, Retry-After, the target policy)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import orjson
import pytest
import respx

import engine.http
from engine.http import (
    AddressClass,
    Executor,
    HttpError,
    HttpRequest,
    HttpResponse,
    TargetPolicy,
    classify_address,
    create_executor,
    merge_url_params,
    retry_after_seconds,
)
from engine.http.aiohttp_executor import GuardedResolver

PUBLIC_IP = "93.184.215.14"
DNS: dict[str, list[str]] = {
    "api.example.org": [PUBLIC_IP],
    "other.example.net": ["151.101.1.69", "2606:4700::1111"],
    "metadata.evil.test": ["169.254.169.254"],
    "rebind.evil.test": [PUBLIC_IP, "10.0.0.5"],
    "loop.evil.test": ["::ffff:127.0.0.1"],
}
Handler = Callable[[httpx.Request], Any]  # may also be async (respx's router)


async def fake_dns(host: str) -> Sequence[str]:
    if host not in DNS:
        raise OSError(f"unknown host {host}")
    return DNS[host]


def make_executor(
    handler: Handler,
    *,
    policy: TargetPolicy | None = None,
    max_body_bytes: int = 1024,
) -> Executor:
    return create_executor(
        kind="httpx",
        max_connections=4,
        max_body_bytes=max_body_bytes,
        target_policy=policy or TargetPolicy(),
        transport=httpx.MockTransport(handler),
        resolver=fake_dns,
    )


class Recorder:
    """A MockTransport handler that answers with ``response`` and keeps every request."""

    def __init__(self, response: httpx.Response | None = None) -> None:
        self.response = response or httpx.Response(200, json={"ok": True})
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response


def req(url: str = "https://api.example.org/v1/items", **fields: object) -> HttpRequest:
    return HttpRequest(**{"method": "GET", "url": url, "timeout": 5.0, **fields})  # type: ignore[arg-type]


async def send_one(
    request: HttpRequest, response: httpx.Response, *, max_body_bytes: int = 1024
) -> tuple[HttpResponse, httpx.Request]:
    recorder = Recorder(response)
    executor = make_executor(recorder, max_body_bytes=max_body_bytes)
    try:
        result = await executor.send(request)
    finally:
        await executor.aclose()
    return result, recorder.requests[-1]


# --- the outgoing request ------------------------------------------------------------------


async def test_sends_exact_request_with_json_body() -> None:
    request = req(
        "https://api.example.org/v1/items?page=2&page=3",
        method="post",
        headers={"X-JobQueue-Job": "j_1", "Idempotency-Key": "k-1"},
        params={"q": "cats & dogs", "tag": ["a", "b"], "debug": True, "skip": None},
        body={"message": "hello", "n": [1, 2.5, None]},
    )
    _, sent = await send_one(request, httpx.Response(200, json={}))
    assert sent.method == "POST"
    assert str(sent.url) == (
        "https://api.example.org/v1/items?page=2&page=3&q=cats%20%26%20dogs&tag=a&tag=b&debug=true"
    )
    assert sent.content == orjson.dumps({"message": "hello", "n": [1, 2.5, None]})
    assert dict(sent.headers) == {
        "host": "api.example.org",
        "user-agent": "jobqueue/0.1",
        "accept": "*/*",
        "accept-encoding": "gzip, deflate",
        "x-jobqueue-job": "j_1",
        "idempotency-key": "k-1",
        "content-type": "application/json",
        "content-length": str(len(sent.content)),
    }


async def test_text_body_is_sent_as_is_with_text_plain() -> None:
    _, sent = await send_one(req(method="PUT", body="a,b\n1,2"), httpx.Response(204))
    assert sent.content == b"a,b\n1,2"
    assert sent.headers["content-type"] == "text/plain; charset=utf-8"


async def test_caller_headers_override_defaults_whatever_their_case() -> None:
    request = req(
        body=[1],
        headers={"user-agent": "mine/1", "CONTENT-TYPE": "application/vnd.x+json", "X-N": 3},
    )
    _, sent = await send_one(request, httpx.Response(200))
    assert sent.headers.get_list("user-agent") == ["mine/1"]
    assert sent.headers.get_list("content-type") == ["application/vnd.x+json"]
    assert sent.headers["x-n"] == "3"


async def test_no_body_for_none_and_header_none_dropped() -> None:
    _, sent = await send_one(req(headers={"X-Gone": None}), httpx.Response(200))
    assert sent.content == b""
    assert "content-type" not in sent.headers
    assert "x-gone" not in sent.headers


async def test_url_credentials_become_basic_auth() -> None:
    _, sent = await send_one(req("https://user:p%40ss@api.example.org/x"), httpx.Response(200))
    assert sent.url.userinfo == b""
    assert sent.headers["authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss


async def test_httpx_own_params_would_drop_the_url_query_but_ours_does_not() -> None:
    url = "https://api.example.org/search?lang=en"
    assert "lang" not in str(httpx.Request("GET", url, params={"q": "x"}).url)  # httpx 0.28
    _, sent = await send_one(req(url, params={"q": "x"}), httpx.Response(200))
    assert sent.url.params.multi_items() == [("lang", "en"), ("q", "x")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://api.example.org/x"}, "scheme 'ftp'"),
        ({"url": "https:///nohost"}, "no host"),
        ({"url": "http://127.1/"}, "canonical IPv4"),
        ({"url": "http://2130706433/"}, "canonical IPv4"),
        ({"method": "GE T"}, "method"),
        ({"headers": {"X-A": "1\r\nX-Injected: 2"}}, "CR, LF"),
        ({"headers": {"Bad Name": "1"}}, "header name"),
        ({"headers": {"X-A": {"nested": 1}}}, "header 'X-A'"),
        ({"params": {"q": {"nested": 1}}}, "query parameter 'q'"),
        ({"body": {"when": datetime.now}}, "JSON"),
        ({"timeout": 0}, "timeout"),
    ],
)
async def test_invalid_requests_are_rejected_before_sending(
    fields: dict[str, Any], message: str
) -> None:
    recorder = Recorder()
    executor = make_executor(recorder)
    with pytest.raises(HttpError) as info:
        await executor.send(req(**fields))
    await executor.aclose()
    assert info.value.kind == "invalid_request"
    assert not info.value.retryable
    assert message in str(info.value)
    assert recorder.requests == []


# --- the response --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "body"),
    [
        (httpx.Response(200, json={"a": [1, "é"]}), {"a": [1, "é"]}),
        (
            httpx.Response(
                422,
                content=b'{"title": "bad"}',
                headers={"content-type": "application/problem+json"},
            ),
            {"title": "bad"},
        ),
        (
            httpx.Response(200, content=b"{oops", headers={"content-type": "application/json"}),
            "{oops",
        ),
        (httpx.Response(200, text="plain é"), "plain é"),
        (
            httpx.Response(
                200,
                content="café".encode("latin-1"),
                headers={"content-type": "text/plain; charset=latin-1"},
            ),
            "café",
        ),
        (
            httpx.Response(200, content=b"caf\xe9", headers={"content-type": "text/csv"}),
            "caf\ufffd",
        ),
        (httpx.Response(200, content=b"no content type"), "no content type"),
        (httpx.Response(204), None),
        (httpx.Response(200, content=b"", headers={"content-type": "application/json"}), None),
    ],
)
async def test_response_body_parsing(response: httpx.Response, body: object) -> None:
    result, _ = await send_one(req(), response)
    assert result.body == body
    assert not result.body_base64
    assert not result.truncated
    assert result.status_code == response.status_code


async def test_binary_body_is_base64_with_flag() -> None:
    data = bytes(range(0x80, 0x90))
    response = httpx.Response(200, content=data, headers={"content-type": "image/png"})
    result, _ = await send_one(req(), response)
    assert result.body_base64
    assert result.body == "gIGCg4SFhoeIiYqLjI2Ojw=="
    assert result.size == len(data)


async def test_body_cut_at_the_cap_is_flagged_and_not_parsed() -> None:
    data = orjson.dumps({"items": list(range(100))})
    response = httpx.Response(200, content=data, headers={"content-type": "application/json"})
    result, _ = await send_one(req(), response, max_body_bytes=20)
    assert result.truncated
    assert result.size == 20
    assert result.body == data[:20].decode()


async def test_body_exactly_at_the_cap_is_not_truncated() -> None:
    result, _ = await send_one(req(), httpx.Response(200, text="x" * 20), max_body_bytes=20)
    assert (result.truncated, result.size, result.body) == (False, 20, "x" * 20)


async def test_cut_inside_a_multibyte_character_drops_the_partial_tail() -> None:
    response = httpx.Response(200, content="ééé".encode(), headers={"content-type": "text/plain"})
    result, _ = await send_one(req(), response, max_body_bytes=3)  # é is 2 bytes
    assert (result.body, result.truncated, result.size) == ("é", True, 3)


async def test_response_headers_lowercased_and_repeated_ones_joined() -> None:
    headers = [
        ("X-Multi", "a"),
        ("x-multi", "b"),
        ("Set-Cookie", "s=1"),
        ("Content-Type", "text/plain"),
    ]
    result, _ = await send_one(req(), httpx.Response(200, headers=headers, text="x"))
    assert result.headers["x-multi"] == "a, b"
    assert result.headers["set-cookie"] == "s=1"
    assert all(name == name.lower() for name in result.headers)
    assert result.duration_ms >= 0


async def test_respx_router_as_transport() -> None:
    router = respx.MockRouter(assert_all_called=True)
    route = router.post("https://api.example.org/v1/items", params={"a": "1"}).respond(
        201, json={"id": 7}
    )
    executor = make_executor(router.async_handler)
    result = await executor.send(req(method="POST", params={"a": 1}, body={"x": 1}))
    await executor.aclose()
    assert result.status_code == 201
    assert result.body == {"id": 7}
    assert orjson.loads(route.calls.last.request.content) == {"x": 1}


# --- transport errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (httpx.ConnectError("refused"), "network"),
        (httpx.RemoteProtocolError("peer closed"), "network"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (ConnectionResetError("reset"), "network"),
    ],
)
async def test_transport_errors_map_to_kinds(error: Exception, kind: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    executor = make_executor(fail)
    with pytest.raises(HttpError) as info:
        await executor.send(req())
    await executor.aclose()
    assert info.value.kind == kind
    assert info.value.retryable
    assert "api.example.org:443" in str(info.value)


async def test_unresolvable_host_is_a_network_error() -> None:
    executor = make_executor(Recorder())
    with pytest.raises(HttpError) as info:
        await executor.send(req("https://nowhere.invalid/"))
    await executor.aclose()
    assert info.value.kind == "network"
    assert "nowhere.invalid" in str(info.value)


def test_create_executor_rejects_bad_arguments() -> None:
    policy = TargetPolicy()
    with pytest.raises(ValueError, match="only used by the httpx"):
        create_executor(
            max_connections=1,
            max_body_bytes=1,
            target_policy=policy,
            transport=httpx.MockTransport(Recorder()),
        )
    with pytest.raises(ValueError, match="unknown executor kind"):
        create_executor(kind="curl", max_connections=1, max_body_bytes=1, target_policy=policy)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_connections"):
        create_executor(kind="httpx", max_connections=0, max_body_bytes=1, target_policy=policy)


# --- redirects -----------------------------------------------------------------------------


def redirecting(routes: dict[str, httpx.Response]) -> Recorder:
    """A recorder whose answer depends on the request's path."""

    class ByPath(Recorder):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return routes.get(request.url.path, httpx.Response(200, json={"at": request.url.path}))

    return ByPath()


async def test_redirect_not_followed_unless_asked() -> None:
    recorder = redirecting({"/a": httpx.Response(302, headers={"Location": "/b"})})
    executor = make_executor(recorder)
    result = await executor.send(req("https://api.example.org/a"))
    assert (result.status_code, result.headers["location"]) == (302, "/b")
    followed = await executor.send(req("https://api.example.org/a", follow_redirects=True))
    await executor.aclose()
    assert followed.body == {"at": "/b"}
    assert [r.url.path for r in recorder.requests] == ["/a", "/a", "/b"]


@pytest.mark.parametrize(
    ("status", "method", "next_method", "body_kept"),
    [
        (301, "POST", "GET", False),
        (302, "POST", "GET", False),
        (303, "PUT", "GET", False),
        (307, "POST", "POST", True),
        (308, "PATCH", "PATCH", True),
        (302, "PUT", "PUT", True),
    ],
)
async def test_redirect_method_and_body_rules(
    status: int, method: str, next_method: str, body_kept: bool
) -> None:
    recorder = redirecting({"/a": httpx.Response(status, headers={"Location": "/b"})})
    executor = make_executor(recorder)
    await executor.send(
        req("https://api.example.org/a", method=method, body={"x": 1}, follow_redirects=True)
    )
    await executor.aclose()
    hop = recorder.requests[1]
    assert hop.method == next_method
    assert (hop.content == b'{"x":1}') is body_kept
    assert ("content-type" in hop.headers) is body_kept


async def test_redirect_to_another_origin_drops_credentials() -> None:
    recorder = redirecting(
        {"/a": httpx.Response(302, headers={"Location": "https://other.example.net/b"})}
    )
    executor = make_executor(recorder)
    headers = {"Authorization": "Bearer t", "Cookie": "c=1", "X-JobQueue-Task": "main"}
    await executor.send(req("https://api.example.org/a", headers=headers, follow_redirects=True))
    await executor.aclose()
    hop = recorder.requests[1]
    assert hop.url.host == "other.example.net"
    assert "authorization" not in hop.headers and "cookie" not in hop.headers
    assert hop.headers["x-jobqueue-task"] == "main"


@pytest.mark.parametrize(
    "location", ["http://127.0.0.1/admin", "http://metadata.evil.test/latest", "http://[::1]/"]
)
async def test_every_redirect_hop_is_checked(location: str) -> None:
    recorder = redirecting({"/a": httpx.Response(302, headers={"Location": location})})
    executor = make_executor(recorder)
    with pytest.raises(HttpError) as info:
        await executor.send(req("https://api.example.org/a", follow_redirects=True))
    await executor.aclose()
    assert info.value.kind == "blocked_target"
    assert len(recorder.requests) == 1


async def test_redirect_to_other_scheme_is_invalid() -> None:
    recorder = redirecting({"/a": httpx.Response(302, headers={"Location": "file:///etc/passwd"})})
    executor = make_executor(recorder)
    with pytest.raises(HttpError, match="scheme 'file'") as info:
        await executor.send(req("https://api.example.org/a", follow_redirects=True))
    await executor.aclose()
    assert info.value.kind == "invalid_request"


async def test_more_than_ten_redirects_fail() -> None:
    executor = make_executor(lambda r: httpx.Response(302, headers={"Location": r.url.path + "x"}))
    with pytest.raises(HttpError, match="more than 10 redirects") as info:
        await executor.send(req(follow_redirects=True))
    await executor.aclose()
    assert info.value.kind == "invalid_request"


# --- the target policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.215.14", AddressClass.PUBLIC),
        ("2606:4700::1111", AddressClass.PUBLIC),
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.255.0.9", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("2002:7f00:1::", AddressClass.LOOPBACK),  # 6to4 around 127.0.0.1
        ("64:ff9b::7f00:1", AddressClass.LOOPBACK),  # NAT64 around 127.0.0.1
        ("10.1.2.3", AddressClass.PRIVATE),
        ("172.16.0.1", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.PRIVATE),  # CGNAT
        ("fd12:3456::1", AddressClass.PRIVATE),
        ("::ffff:10.0.0.1", AddressClass.PRIVATE),
        ("169.254.1.1", AddressClass.LINK_LOCAL),
        ("fe80::1", AddressClass.LINK_LOCAL),
        ("169.254.169.254", AddressClass.METADATA),
        ("::ffff:169.254.169.254", AddressClass.METADATA),
        ("fd00:ec2::254", AddressClass.METADATA),
        ("0.0.0.0", AddressClass.UNSPECIFIED),
        ("0.1.2.3", AddressClass.UNSPECIFIED),
        ("::", AddressClass.UNSPECIFIED),
        ("224.0.0.1", AddressClass.MULTICAST),
        ("ff02::1", AddressClass.MULTICAST),
        ("240.0.0.1", AddressClass.RESERVED),
        ("255.255.255.255", AddressClass.RESERVED),
    ],
)
def test_classify_address(address: str, kind: AddressClass) -> None:
    assert classify_address(ipaddress.ip_address(address)) is kind


DEFAULT = TargetPolicy()
PRIVATE_OK = TargetPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("policy", "host", "address", "allowed"),
    [
        (DEFAULT, "api.example.org", "93.184.215.14", True),
        (DEFAULT, "localhost", "127.0.0.1", False),
        (PRIVATE_OK, "localhost", "127.0.0.1", True),
        (DEFAULT, "x", "::ffff:127.0.0.1", False),
        (PRIVATE_OK, "x", "::ffff:127.0.0.1", True),
        (DEFAULT, "x", "10.0.0.1", False),
        (PRIVATE_OK, "x", "10.0.0.1", True),
        (DEFAULT, "x", "169.254.10.10", False),
        (PRIVATE_OK, "x", "169.254.10.10", True),
        (PRIVATE_OK, "x", "169.254.169.254", False),  # metadata: allow_private is not enough
        (TargetPolicy(allowed_hosts=("169.254.169.254/32",)), "x", "169.254.169.254", True),
        (PRIVATE_OK, "x", "0.0.0.0", False),
        (PRIVATE_OK, "x", "224.0.0.1", False),
        (PRIVATE_OK, "x", "240.0.0.1", False),
        (TargetPolicy(allowed_hosts=("10.0.0.0/8",)), "svc", "10.2.3.4", True),  # CIDR named
        (TargetPolicy(allowed_hosts=("10.0.0.0/8",)), "svc", "11.2.3.4", False),
        (TargetPolicy(allowed_hosts=("api.example.org",)), "API.example.org.", PUBLIC_IP, True),
        (TargetPolicy(allowed_hosts=("api.example.org",)), "www.example.org", PUBLIC_IP, False),
        (TargetPolicy(allowed_hosts=("*.example.org",)), "a.b.example.org", PUBLIC_IP, True),
        (TargetPolicy(allowed_hosts=("*.example.org",)), "example.org", PUBLIC_IP, False),
        (TargetPolicy(allowed_hosts=("*.example.org",)), "badexample.org", PUBLIC_IP, False),
        # a listed name does not open private addresses (DNS rebinding)
        (TargetPolicy(allowed_hosts=("api.example.org",)), "api.example.org", "10.0.0.1", False),
    ],
)
def test_policy_verdicts(policy: TargetPolicy, host: str, address: str, allowed: bool) -> None:
    assert (policy.verdict(host, ipaddress.ip_address(address)) is None) is allowed


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "*", "a/b/c", "*.*.org", "host:80"])
def test_policy_rejects_bad_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed_hosts"):
        TargetPolicy(allowed_hosts=(entry,))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "http://metadata.evil.test/latest/meta-data",
            "'metadata.evil.test' resolves to 169.254.169.254",
        ),
        ("https://rebind.evil.test/", "'rebind.evil.test' resolves to 10.0.0.5 (private)"),
        ("http://loop.evil.test/", "resolves to ::ffff:127.0.0.1 (loopback)"),
        ("http://127.0.0.1:8080/", "target address 127.0.0.1 (loopback)"),
        ("http://[::1]/", "target address ::1 (loopback)"),
        ("http://192.168.0.1/", "target address 192.168.0.1 (private)"),
    ],
)
async def test_blocked_target_raises_naming_host_and_address(url: str, shown: str) -> None:
    recorder = Recorder()
    executor = make_executor(recorder)
    with pytest.raises(HttpError) as info:
        await executor.send(req(url))
    await executor.aclose()
    assert info.value.kind == "blocked_target"
    assert not info.value.retryable
    assert shown in str(info.value)
    assert recorder.requests == []


async def test_mock_transport_with_allow_private_skips_dns() -> None:
    recorder = Recorder()
    executor = create_executor(
        kind="httpx",
        max_connections=1,
        max_body_bytes=100,
        target_policy=PRIVATE_OK,
        transport=httpx.MockTransport(recorder),
    )
    result = await executor.send(req("http://api.local/search"))  # resolves nowhere
    await executor.aclose()
    assert result.status_code == 200
    assert recorder.requests[0].url.host == "api.local"


# --- merge_url_params ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "params", "merged"),
    [
        ("http://h/p", {}, "http://h/p"),
        ("http://h/p?a=1", {}, "http://h/p?a=1"),
        ("http://h/p", {"a": "1"}, "http://h/p?a=1"),
        ("http://h/p?a=1", {"b": "2"}, "http://h/p?a=1&b=2"),
        ("http://h/p?a=1", {"a": "2"}, "http://h/p?a=1&a=2"),  # neither dropped
        ("http://h/p?x=%20+", {"y": "a b+c"}, "http://h/p?x=%20+&y=a%20b%2Bc"),  # URL's kept as-is
        ("http://h/p", {"k": ["1", 2, None, False]}, "http://h/p?k=1&k=2&k=false"),
        ("http://h/p", {"t": True, "f": False, "n": None}, "http://h/p?t=true&f=false"),
        ("http://h/p", {"i": 3, "x": 1.5}, "http://h/p?i=3&x=1.5"),
        ("http://h/p", {"q": "&=?#/é"}, "http://h/p?q=%26%3D%3F%23%2F%C3%A9"),
        ("http://h/p", {"a key": "v"}, "http://h/p?a%20key=v"),
        ("http://h/p?a=1#frag", {"b": "2"}, "http://h/p?a=1&b=2#frag"),
    ],
)
def test_merge_url_params(url: str, params: dict[str, object], merged: str) -> None:
    assert merge_url_params(url, params) == merged


@pytest.mark.parametrize("value", [{"a": 1}, [["nested"]], float("nan"), b"bytes"])
def test_merge_url_params_rejects_other_values(value: object) -> None:
    with pytest.raises(HttpError, match="query parameter 'p'") as info:
        merge_url_params("http://h/", {"p": value})
    assert info.value.kind == "invalid_request"


# --- retry_after_seconds -------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"retry-after": " 0 "}, 0.0),
        ({"RETRY-AFTER": "1.5"}, 1.5),
        ({"Retry-After": format_datetime(NOW + timedelta(seconds=90), usegmt=True)}, 90.0),
        ({"Retry-After": "Sat, 01 Mar 2025 12:00:30 GMT"}, 30.0),
        ({"Retry-After": format_datetime(NOW - timedelta(hours=1), usegmt=True)}, 0.0),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_seconds(headers, now=NOW) == seconds


def test_retry_after_defaults_to_the_current_time() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=600), usegmt=True)
    seconds = retry_after_seconds({"Retry-After": later})
    assert seconds is not None and 590 < seconds <= 600


# --- the aiohttp executor's resolver and the public surface --------------------------------


async def test_guarded_resolver_returns_only_checked_addresses() -> None:
    resolver = GuardedResolver(DEFAULT, fake_dns)
    results = await resolver.resolve("other.example.net", 443, socket.AF_UNSPEC)
    assert [(r["host"], r["port"], r["family"]) for r in results] == [
        ("151.101.1.69", 443, socket.AF_INET),
        ("2606:4700::1111", 443, socket.AF_INET6),
    ]
    only_v4 = await resolver.resolve("other.example.net", 443, socket.AF_INET)
    assert [r["host"] for r in only_v4] == ["151.101.1.69"]
    with pytest.raises(HttpError, match=r"10\.0\.0\.5 \(private\)") as info:
        await resolver.resolve("rebind.evil.test", 443, socket.AF_UNSPEC)
    assert info.value.kind == "blocked_target"
    await resolver.close()


def test_public_surface() -> None:
    assert set(engine.http.__all__) >= {
        "Executor",
        "HttpError",
        "HttpRequest",
        "HttpResponse",
        "TargetPolicy",
        "create_executor",
        "merge_url_params",
        "retry_after_seconds",
    }
    assert all(hasattr(engine.http, name) for name in engine.http.__all__)
