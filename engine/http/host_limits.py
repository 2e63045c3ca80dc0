"""Per-host limits of one worker process (``JOBQUEUE_HOST_LIMITS``): concurrency, request rate,
and the pause a ``429``/``503`` with ``Retry-After`` asks for. Pure: no I/O, the clock is
injected (tests use a fake one).

``api.example.com=4:10/s,*.internal.example=2,slow.example.org=:0.5/s``: at most 4 calls in
flight to ``api.example.com`` and 10 started a second; at most 2 in flight to each host under
``internal.example``; one call every two seconds to ``slow.example.org``. An exact name wins
over a pattern; of two patterns, the longer suffix wins. Each host has its own counters, even
when a pattern matched it.

:meth:`HostLimiter.acquire` never waits: it says "go" (``None``) or when to try again, and the
worker hands the task back to the queue until then, so a waiting task holds no worker slot and
spends no attempt. The times it gives are spread out (one slot per expected free place), so
that tasks deferred together do not all come back at the same instant.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

#: the rate part: a number of requests per second (``/s``) or per minute (``/m``)
_RATE = re.compile(r"^(\d+(?:\.\d+)?)/(s|m)$")
#: the first guess of how long a call takes, before any call to the host ended
_FIRST_DURATION = 0.1
#: how much a new call duration moves the running average
_SMOOTHING = 0.2
#: hosts remembered at most (idle ones are forgotten first)
_MAX_HOSTS = 4096


@dataclass(frozen=True, kw_only=True)
class HostRule:
    """The limits of the hosts a pattern names (``api.example.com`` or ``*.example.com``)."""

    pattern: str
    #: calls in flight at once to one host; None: no cap
    concurrency: int | None = None
    #: calls started per second to one host; None: no cap
    rate: float | None = None

    def matches(self, host: str) -> bool:
        if self.pattern.startswith("*."):
            return host.endswith(self.pattern[1:])
        return host == self.pattern


def _entry_error(entry: str, why: str) -> ValueError:
    return ValueError(
        f"JOBQUEUE_HOST_LIMITS: {entry!r} {why} (expected host=CONCURRENCY, host=CONCURRENCY:RATE "
        "or host=:RATE, RATE as N/s or N/m, e.g. api.example.com=4:10/s,*.internal.example=2)"
    )


def _parse_entry(entry: str) -> HostRule:
    host, sep, limits = entry.partition("=")
    host = host.strip().rstrip(".").lower()
    if not sep or not host or not limits.strip():
        raise _entry_error(entry, "is not host=limits")
    label = host.removeprefix("*.")
    if not label or "*" in label or any(c in label for c in " :/@?#"):
        raise _entry_error(entry, "does not name a host or *.domain")
    concurrency_text, _, rate_text = limits.strip().partition(":")
    concurrency = None
    if concurrency_text:
        if not concurrency_text.isdigit() or int(concurrency_text) < 1:
            raise _entry_error(entry, "has a concurrency that is not a whole number >= 1")
        concurrency = int(concurrency_text)
    rate = None
    if rate_text:
        match = _RATE.match(rate_text.strip())
        if match is None or float(match.group(1)) <= 0:
            raise _entry_error(entry, "has a rate that is not a positive N/s or N/m")
        rate = float(match.group(1)) / (60.0 if match.group(2) == "m" else 1.0)
    if concurrency is None and rate is None:
        raise _entry_error(entry, "sets no limit")
    return HostRule(pattern=host, concurrency=concurrency, rate=rate)


def parse_host_limits(text: str) -> tuple[HostRule, ...]:
    """The rules of a ``JOBQUEUE_HOST_LIMITS`` value; :class:`ValueError` naming a bad entry."""
    rules = [_parse_entry(entry) for entry in text.split(",") if entry.strip()]
    seen: set[str] = set()
    for rule in rules:
        if rule.pattern in seen:
            raise _entry_error(rule.pattern, "is listed twice")
        seen.add(rule.pattern)
    return tuple(rules)


@dataclass
class _Host:
    rule: HostRule | None
    in_flight: int = 0
    tokens: float = 0.0
    refilled_at: float = 0.0
    paused_until: float = 0.0
    #: the next time handed to a deferred task (deferred tasks get successive slots)
    next_slot: float = 0.0
    #: running average of call durations, for the wait a full concurrency cap means
    duration: float = _FIRST_DURATION


class HostLimiter:
    """Concurrency, rate and pauses per host, for one worker process."""

    def __init__(
        self, rules: tuple[HostRule, ...] = (), *, clock: Callable[[], float] = time.time
    ) -> None:
        self.rules = rules
        self._exact = {r.pattern: r for r in rules if not r.pattern.startswith("*.")}
        self._patterns = sorted(
            (r for r in rules if r.pattern.startswith("*.")), key=lambda r: -len(r.pattern)
        )
        self._clock = clock
        self._hosts: dict[str, _Host] = {}

    @property
    def idle(self) -> bool:
        """No rule and no host paused: :meth:`acquire` would say "go" to every host."""
        return not self.rules and not self._hosts

    def rule_for(self, host: str) -> HostRule | None:
        host = host.rstrip(".").lower()
        exact = self._exact.get(host)
        if exact is not None:
            return exact
        return next((r for r in self._patterns if r.matches(host)), None)

    def _state(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            if len(self._hosts) >= _MAX_HOSTS:
                self._forget_idle()
            rule = self.rule_for(host)
            burst = max(1.0, rule.rate) if rule is not None and rule.rate else 0.0
            state = _Host(rule=rule, tokens=burst, refilled_at=self._clock())
            self._hosts[host] = state
        return state

    def _forget_idle(self) -> None:
        now = self._clock()
        for host, state in list(self._hosts.items()):
            if state.in_flight == 0 and state.paused_until <= now and state.next_slot <= now:
                del self._hosts[host]

    def _slot(self, state: _Host, earliest: float, spacing: float) -> float:
        """The next free slot at or after ``earliest``; the one after it is ``spacing`` later."""
        due = max(earliest, state.next_slot)
        state.next_slot = due + spacing
        return due

    def _spacing(self, rule: HostRule | None, state: _Host) -> float:
        gaps = []
        if rule is not None and rule.rate:
            gaps.append(1.0 / rule.rate)
        if rule is not None and rule.concurrency:
            gaps.append(state.duration / rule.concurrency)
        return max(gaps, default=0.0)

    def acquire(self, host: str) -> float | None:
        """``None``: call now (then :meth:`release` when the call ended); else the time
        (``clock()`` units) before which no call to ``host`` should start."""
        host = host.rstrip(".").lower()
        if self.idle:
            return None
        now = self._clock()
        state = self._state(host)
        rule = state.rule
        if state.paused_until > now:
            return self._slot(state, state.paused_until, self._spacing(rule, state))
        if rule is not None:
            if rule.concurrency is not None and state.in_flight >= rule.concurrency:
                return self._slot(
                    state, now + self._spacing(rule, state), self._spacing(rule, state)
                )
            if rule.rate is not None:
                burst = max(1.0, rule.rate)
                state.tokens = min(burst, state.tokens + (now - state.refilled_at) * rule.rate)
                state.refilled_at = now
                if state.tokens < 1.0:
                    wait = (1.0 - state.tokens) / rule.rate
                    return self._slot(state, now + wait, self._spacing(rule, state))
                state.tokens -= 1.0
        state.in_flight += 1
        return None

    def release(self, host: str, duration: float | None = None) -> None:
        """A call that :meth:`acquire` let go has ended (``duration``: how long it took)."""
        state = self._hosts.get(host.rstrip(".").lower())
        if state is None:
            return
        state.in_flight = max(0, state.in_flight - 1)
        if duration is not None and duration >= 0:
            state.duration += _SMOOTHING * (duration - state.duration)

    def pause(self, host: str, until: float) -> None:
        """No call to ``host`` starts before ``until`` (a ``Retry-After`` it answered)."""
        state = self._state(host.rstrip(".").lower())
        state.paused_until = max(state.paused_until, until)

    def paused_until(self, host: str) -> float | None:
        state = self._hosts.get(host.rstrip(".").lower())
        if state is None or state.paused_until <= self._clock():
            return None
        return state.paused_until
