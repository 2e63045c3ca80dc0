"""The per-host limiter on a fake clock: parsing, concurrency caps, token-bucket rates, pauses,
and the spread of the times handed to deferred tasks."""

from __future__ import annotations

import itertools

import pytest

from engine.http.host_limits import HostLimiter, HostRule, parse_host_limits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(text: str) -> tuple[HostLimiter, Clock]:
    clock = Clock()
    return HostLimiter(parse_host_limits(text), clock=clock), clock


def test_parse() -> None:
    assert parse_host_limits("api.example.com=4:10/s, *.Internal.example.=2,s.org=:30/m") == (
        HostRule(pattern="api.example.com", concurrency=4, rate=10.0),
        HostRule(pattern="*.internal.example", concurrency=2),
        HostRule(pattern="s.org", rate=0.5),
    )
    assert parse_host_limits("") == ()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("api.example.com", "is not host=limits"),
        ("=4", "is not host=limits"),
        ("a.org=0", "concurrency"),
        ("a.org=x", "concurrency"),
        ("a.org=2:10", "rate"),
        ("a.org=2:0/s", "rate"),
        ("a.org=:", "sets no limit"),
        ("*=2", "does not name a host"),
        ("a.org=1,A.org=2", "listed twice"),
    ],
)
def test_parse_errors_name_the_setting_and_entry(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="JOBQUEUE_HOST_LIMITS") as info:
        parse_host_limits(text)
    assert why in str(info.value)


def test_exact_name_wins_over_pattern_and_longer_pattern_wins() -> None:
    hosts, _ = limiter("*.example.com=1,*.api.example.com=2,x.api.example.com=3")
    assert hosts.rule_for("X.api.example.com.").concurrency == 3  # type: ignore[union-attr]
    assert hosts.rule_for("y.api.example.com").concurrency == 2  # type: ignore[union-attr]
    assert hosts.rule_for("z.example.com").concurrency == 1  # type: ignore[union-attr]
    assert hosts.rule_for("example.com") is None


def test_no_rules_means_idle_and_always_go() -> None:
    hosts, _ = limiter("")
    assert hosts.idle
    assert all(hosts.acquire("a.org") is None for _ in range(100))


def test_concurrency_cap_per_host() -> None:
    hosts, clock = limiter("*.svc=2")
    assert hosts.acquire("a.svc") is None
    assert hosts.acquire("a.svc") is None
    later = hosts.acquire("a.svc")
    assert later is not None and later > clock.now
    assert hosts.acquire("b.svc") is None  # each host has its own counter
    hosts.release("a.svc", 0.1)
    assert hosts.acquire("a.svc") is None


def test_deferred_tasks_get_spread_out_slots() -> None:
    hosts, clock = limiter("a.org=1")
    assert hosts.acquire("a.org") is None
    hosts.release("a.org", 0.4)
    assert hosts.acquire("a.org") is None
    slots = [hosts.acquire("a.org") for _ in range(5)]
    assert all(s is not None for s in slots)
    gaps = [b - a for a, b in itertools.pairwise(slots)]  # type: ignore[operator]
    assert all(gap > 0 for gap in gaps)
    assert slots[0] > clock.now  # type: ignore[operator]


def test_rate_is_a_token_bucket() -> None:
    hosts, clock = limiter("a.org=:2/s")
    assert hosts.acquire("a.org") is None
    assert hosts.acquire("a.org") is None  # a burst of 2
    wait = hosts.acquire("a.org")
    assert wait == pytest.approx(clock.now + 0.5)
    clock.now += 0.5
    assert hosts.acquire("a.org") is None
    assert hosts.acquire("a.org") is not None
    clock.now += 10  # tokens refill up to the burst only
    assert [hosts.acquire("a.org") for _ in range(3)][:2] == [None, None]


def test_slow_rate_per_minute() -> None:
    hosts, clock = limiter("a.org=:6/m")
    assert hosts.acquire("a.org") is None
    assert hosts.acquire("a.org") == pytest.approx(clock.now + 10.0)


def test_pause_holds_every_call_to_the_host_until_its_end() -> None:
    hosts, clock = limiter("")
    hosts.pause("a.org", clock.now + 30)
    assert not hosts.idle
    assert hosts.acquire("A.org") == clock.now + 30
    assert hosts.acquire("b.org") is None  # other hosts go on
    assert hosts.paused_until("a.org") == clock.now + 30
    clock.now += 30
    assert hosts.acquire("a.org") is None
    assert hosts.paused_until("a.org") is None


def test_pause_then_cap_spreads_the_returning_tasks() -> None:
    hosts, clock = limiter("a.org=:1/s")
    hosts.pause("a.org", clock.now + 5)
    first, second = hosts.acquire("a.org"), hosts.acquire("a.org")
    assert first == clock.now + 5
    assert second == pytest.approx(clock.now + 6)


def test_release_without_acquire_is_harmless() -> None:
    hosts, _ = limiter("a.org=1")
    hosts.release("a.org")
    hosts.release("unknown.org")
    assert hosts.acquire("a.org") is None
    assert hosts.acquire("a.org") is not None
