"""The one outgoing-request guard, ``check_url``: a table of address forms and host tricks with
their verdicts, judged through a stub resolver (no network)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from engine.http import HttpError, TargetPolicy, check_url

PUBLIC = "93.184.215.14"
#: what the stub resolver answers (host names are looked up lower-case, without a trailing dot)
DNS: dict[str, list[str]] = {
    "api.example.org": [PUBLIC],
    "a.b.example.org": [PUBLIC],
    "evil-example.org": [PUBLIC],
    "xn--bcher-kva.example": ["151.101.1.69"],
    "localhost": ["127.0.0.1", "::1"],
    "internal.corp.test": ["10.1.2.3"],
    "intranet.example.org": ["10.0.0.9"],
    "rebind.evil.test": [PUBLIC, "10.0.0.5"],
    "mapped-metadata.test": ["::ffff:169.254.169.254"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "cgnat.test": ["100.64.12.1"],
}

DEFAULT = TargetPolicy()
PRIVATE_OK = TargetPolicy(allow_private=True)
ALLOW_10 = TargetPolicy(allowed_hosts=("10.0.0.0/8",))
ALLOW_NAMES = TargetPolicy(allowed_hosts=("*.example.org",))
ALLOW_METADATA = TargetPolicy(allowed_hosts=("169.254.169.254/32",))

OK, BLOCKED, INVALID, NETWORK = "ok", "blocked_target", "invalid_request", "network"

TABLE: list[tuple[str, TargetPolicy, str]] = [
    # numeric forms the C resolver would map onto 127.0.0.1: refused before any lookup
    ("http://2130706433/", DEFAULT, INVALID),  # decimal
    ("http://017700000001/", DEFAULT, INVALID),  # octal
    ("http://0x7f000001/", DEFAULT, INVALID),  # hex
    ("http://0x7f.0.0.1/", DEFAULT, INVALID),
    ("http://0177.0.0.1/", DEFAULT, INVALID),
    ("http://127.1/", DEFAULT, INVALID),
    ("http://0/", DEFAULT, INVALID),
    ("ftp://api.example.org/", DEFAULT, INVALID),
    # loopback in every spelling
    ("http://127.0.0.1/", DEFAULT, BLOCKED),
    ("http://127.0.0.1:22/", DEFAULT, BLOCKED),  # the port changes nothing
    ("http://[::1]/", DEFAULT, BLOCKED),
    ("http://[::ffff:127.0.0.1]/", DEFAULT, BLOCKED),  # IPv4-mapped
    ("http://[::ffff:7f00:1]/", DEFAULT, BLOCKED),
    ("http://[::127.0.0.1]/", DEFAULT, BLOCKED),  # IPv4-compatible (reserved ::/8)
    ("http://[64:ff9b::7f00:1]/", DEFAULT, BLOCKED),  # NAT64
    ("http://[2002:7f00:1::]/", DEFAULT, BLOCKED),  # 6to4
    ("http://localhost/", DEFAULT, BLOCKED),
    ("http://localhost./", DEFAULT, BLOCKED),  # trailing dot
    ("http://LOCALHOST/", DEFAULT, BLOCKED),  # upper case
    ("http://a@127.0.0.1/", DEFAULT, BLOCKED),  # userinfo before the real host
    ("http://user:pass@127.0.0.1:8080/x", DEFAULT, BLOCKED),
    ("http://127.0.0.1.nip.io/", DEFAULT, BLOCKED),  # a name that resolves to loopback
    # unspecified, multicast, broadcast
    ("http://0.0.0.0/", DEFAULT, BLOCKED),
    ("http://0.0.0.0/", PRIVATE_OK, BLOCKED),
    ("http://[::]/", DEFAULT, BLOCKED),
    ("http://224.0.0.1/", PRIVATE_OK, BLOCKED),
    ("http://[ff02::1]/", PRIVATE_OK, BLOCKED),
    ("http://255.255.255.255/", PRIVATE_OK, BLOCKED),
    # private, CGNAT, ULA, link-local, documentation
    ("http://10.0.0.1/", DEFAULT, BLOCKED),
    ("http://172.16.0.1/", DEFAULT, BLOCKED),
    ("http://192.168.0.1/", DEFAULT, BLOCKED),
    ("http://100.64.0.1/", DEFAULT, BLOCKED),
    ("http://100.127.255.254/", DEFAULT, BLOCKED),
    ("http://cgnat.test/", DEFAULT, BLOCKED),
    ("http://[fd00::1]/", DEFAULT, BLOCKED),
    ("http://[fd12:3456::1]/", DEFAULT, BLOCKED),
    ("http://169.254.1.1/", DEFAULT, BLOCKED),
    ("http://[fe80::1]/", DEFAULT, BLOCKED),
    ("http://198.51.100.1/", DEFAULT, BLOCKED),
    ("http://internal.corp.test/", DEFAULT, BLOCKED),
    # cloud metadata: even allow_private does not open it; only a CIDR naming it does
    ("http://169.254.169.254/latest/meta-data/", DEFAULT, BLOCKED),
    ("http://169.254.169.254/latest/meta-data/", PRIVATE_OK, BLOCKED),
    ("http://169.254.169.254/latest/meta-data/", ALLOW_METADATA, OK),
    ("http://[::ffff:169.254.169.254]/", PRIVATE_OK, BLOCKED),
    ("http://[64:ff9b::a9fe:a9fe]/", PRIVATE_OK, BLOCKED),
    ("http://[2002:a9fe:a9fe::]/", PRIVATE_OK, BLOCKED),
    ("http://[fd00:ec2::254]/", PRIVATE_OK, BLOCKED),
    ("http://mapped-metadata.test/", PRIVATE_OK, BLOCKED),
    # one private answer among public ones blocks the name (rebinding starts like this)
    ("http://rebind.evil.test/", DEFAULT, BLOCKED),
    # public targets
    ("http://api.example.org/", DEFAULT, OK),
    ("https://api.example.org:8443/v1", DEFAULT, OK),
    ("http://API.Example.ORG./", DEFAULT, OK),
    ("http://127.0.0.1@api.example.org/", DEFAULT, OK),  # userinfo, not the host
    ("http://bücher.example/", DEFAULT, OK),  # IDN, looked up as xn--bcher-kva.example
    ("http://xn--bcher-kva.example/", DEFAULT, OK),
    ("http://93.184.215.14/", DEFAULT, OK),
    ("http://[2606:4700::1111]/", DEFAULT, OK),
    ("http://nxdomain.test/", DEFAULT, NETWORK),
    # allow-lists: CIDRs and names
    ("http://127.0.0.1:8080/", PRIVATE_OK, OK),
    ("http://10.2.3.4/", ALLOW_10, OK),
    ("http://internal.corp.test/", ALLOW_10, OK),
    ("http://11.0.0.1/", ALLOW_10, BLOCKED),
    ("http://api.example.org/", ALLOW_10, BLOCKED),
    ("http://a.b.example.org/", ALLOW_NAMES, OK),
    ("http://evil-example.org/", ALLOW_NAMES, BLOCKED),
    ("http://intranet.example.org/", ALLOW_NAMES, BLOCKED),  # listed name, private address
]


async def stub_resolve(host: str) -> Sequence[str]:
    key = host.rstrip(".").lower()
    if key not in DNS:
        raise OSError(f"unknown host {host}")
    return DNS[key]


def test_the_table_is_large_enough() -> None:
    assert len(TABLE) >= 40


@pytest.mark.parametrize(("url", "policy", "verdict"), TABLE)
async def test_verdict(url: str, policy: TargetPolicy, verdict: str) -> None:
    try:
        checked = await check_url(url, policy, resolve=stub_resolve)
    except HttpError as exc:
        assert exc.kind == verdict, str(exc)
        assert not exc.retryable or verdict == NETWORK
        return
    assert verdict == OK
    assert checked.addresses


async def test_checked_addresses_are_the_resolvers_answer() -> None:
    checked = await check_url("http://API.example.org./x", DEFAULT, resolve=stub_resolve)
    assert checked.addresses == (PUBLIC,)
    assert checked.host == "api.example.org."


async def test_blocked_message_names_host_and_address() -> None:
    with pytest.raises(HttpError, match=r"'rebind\.evil\.test' resolves to 10\.0\.0\.5"):
        await check_url("http://rebind.evil.test/", DEFAULT, resolve=stub_resolve)
