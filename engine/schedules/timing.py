"""When a schedule fires: pure functions over a cron expression, a timezone and a clock.

No I/O and no clock of their own: every function takes ``now`` (UNIX seconds), so tests drive
them with a fake clock. Cron expressions are read by ``cronsim``: five fields (minute hour
day-of-month month day-of-week) or six with a leading seconds field.

Daylight saving time (the expression is evaluated in the schedule's zone, like Vixie cron):

* a local time that does not exist (spring forward) fires once, at the first valid time after
  the gap: in Europe/Berlin on 2027-03-28 clocks jump from 02:00 to 03:00, so ``30 2 * * *``
  fires at 03:00 local (01:00 UTC) that day;
* a local time that happens twice (fall back) fires once, at its first occurrence: on 2027-10-31
  02:00-03:00 is repeated, so ``30 2 * * *`` fires at 02:30 CEST (00:30 UTC) only. Expressions
  whose hour field is ``*`` follow real time and fire in both repeated hours.

Catch-up after downtime: a tick is *on time* while it is at most :data:`GRACE_SECONDS` old; older
ticks are *missed*. ``none`` fires only on-time ticks, ``latest`` also the most recent missed
tick, ``all`` every missed tick too, at most :data:`CATCH_UP_CAP` of them (the most recent).
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

__all__ = [
    "CATCH_UP_CAP",
    "GRACE_SECONDS",
    "CatchUp",
    "Cron",
    "CronError",
    "Overlap",
    "OverlapAction",
    "Plan",
    "due",
    "overlap_action",
]

#: a tick handled at most this many seconds after its time is on time, not missed
GRACE_SECONDS = 60.0
#: the most missed ticks ``catch_up: all`` fires after downtime (the most recent ones)
CATCH_UP_CAP = 1000


class CatchUp(enum.StrEnum):
    #: skip missed ticks; fire the next one on time
    NONE = "none"
    #: fire the most recent missed tick once
    LATEST = "latest"
    #: fire every missed tick (at most CATCH_UP_CAP)
    ALL = "all"


class Overlap(enum.StrEnum):
    #: create the job whether or not the previous one has ended
    ALLOW = "allow"
    #: record the tick as skipped while the previous job has not ended
    SKIP = "skip"
    #: cancel the previous job if it has not ended, then create
    CANCEL_PREVIOUS = "cancel_previous"


class OverlapAction(enum.StrEnum):
    CREATE = "create"
    SKIP = "skip"
    CANCEL_AND_CREATE = "cancel_and_create"


class CronError(ValueError):
    """A cron expression or timezone that cannot be used; the message says why, ``field``
    which of the two (``cron`` or ``timezone``)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Cron:
    """A parsed cron expression in a timezone."""

    expression: str
    timezone: str

    def __post_init__(self) -> None:
        zone = self.zone  # raises for an unknown zone
        try:
            CronSim(self.expression, datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as exc:
            raise CronError(
                f"invalid cron expression {self.expression!r}: {exc}", field="cron"
            ) from None

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronError(
                f"unknown timezone {self.timezone!r} (an IANA name such as "
                "'Europe/Berlin' or 'UTC')",
                field="timezone",
            ) from None

    def after(self, moment: float) -> Iterator[float]:
        """Fire times strictly after ``moment``, ascending."""
        start = datetime.fromtimestamp(moment, UTC).astimezone(self.zone)
        return (t.timestamp() for t in CronSim(self.expression, start))

    def at_or_before(self, moment: float) -> Iterator[float]:
        """Fire times at or before ``moment``, descending."""
        # cronsim's reverse walk starts strictly before a whole second: start one after
        start = datetime.fromtimestamp(math.floor(moment) + 1, UTC).astimezone(self.zone)
        return (t.timestamp() for t in CronSim(self.expression, start, reverse=True))

    def next_after(self, moment: float) -> float:
        return next(self.after(moment))

    def upcoming(self, moment: float, count: int) -> list[float]:
        return list(itertools.islice(self.after(moment), count))


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What to do with the ticks that are due."""

    #: ticks to fire, ascending
    fire: list[float]
    #: how many due ticks are skipped as missed (not counted beyond what was looked at)
    missed: int
    #: the first tick after ``now``: the schedule's next fire time
    next_fire_at: float


def due(cron: Cron, *, next_fire_at: float, now: float, catch_up: CatchUp) -> Plan:
    """The ticks in ``[next_fire_at, now]`` to fire, by the catch-up rule.

    ``next_fire_at`` is the first tick not handled yet. Work is bounded however long the
    downtime: on-time ticks span at most :data:`GRACE_SECONDS`, missed ones are read backwards
    from the edge of the grace window and at most :data:`CATCH_UP_CAP` of them.
    """
    if next_fire_at > now:
        return Plan(fire=[], missed=0, next_fire_at=next_fire_at)
    following = cron.next_after(now)
    edge = now - GRACE_SECONDS
    on_time = [
        t for t in _until(cron.after(max(next_fire_at - 0.5, edge)), now) if t >= next_fire_at
    ]
    if next_fire_at > edge:
        return Plan(fire=on_time, missed=0, next_fire_at=following)
    wanted = {CatchUp.NONE: 0, CatchUp.LATEST: 1, CatchUp.ALL: CATCH_UP_CAP}[catch_up]
    missed = list(itertools.islice(_since(cron.at_or_before(edge), next_fire_at), CATCH_UP_CAP + 1))
    fired = sorted(missed[:wanted])
    return Plan(fire=fired + on_time, missed=len(missed) - len(fired), next_fire_at=following)


def _until(ticks: Iterator[float], end: float) -> Iterator[float]:
    return itertools.takewhile(lambda t: t <= end, ticks)


def _since(ticks: Iterator[float], start: float) -> Iterator[float]:
    return itertools.takewhile(lambda t: t >= start, ticks)


def overlap_action(overlap: Overlap, *, previous_running: bool) -> OverlapAction:
    """What a tick does when the schedule's previous job has (not) ended."""
    if not previous_running or overlap is Overlap.ALLOW:
        return OverlapAction.CREATE
    if overlap is Overlap.SKIP:
        return OverlapAction.SKIP
    return OverlapAction.CANCEL_AND_CREATE
