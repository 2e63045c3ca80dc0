"""The pure schedule rules, driven by a fake clock: ticks, DST both ways, catch-up, overlap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.schedules.timing import (
    CATCH_UP_CAP,
    GRACE_SECONDS,
    CatchUp,
    Cron,
    CronError,
    Overlap,
    OverlapAction,
    due,
    overlap_action,
)


def ts(text: str) -> float:
    """An ISO time (with its offset) as UNIX seconds."""
    return datetime.fromisoformat(text).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def test_every_five_minutes_in_a_zone() -> None:
    cron = Cron("*/5 * * * *", "Europe/Berlin")
    got = cron.upcoming(ts("2027-01-10T10:02:30+01:00"), 3)
    assert [iso(t) for t in got] == [
        "2027-01-10T09:05:00+00:00",
        "2027-01-10T09:10:00+00:00",
        "2027-01-10T09:15:00+00:00",
    ]


def test_six_fields_have_a_leading_seconds_field() -> None:
    cron = Cron("*/2 * * * * *", "UTC")
    assert [iso(t) for t in cron.upcoming(ts("2027-01-01T00:00:00+00:00"), 3)] == [
        "2027-01-01T00:00:02+00:00",
        "2027-01-01T00:00:04+00:00",
        "2027-01-01T00:00:06+00:00",
    ]


def test_spring_forward_a_skipped_local_time_fires_once_at_the_end_of_the_gap() -> None:
    # Europe/Berlin 2027-03-28: 02:00 CET -> 03:00 CEST; 02:30 does not exist that day
    cron = Cron("30 2 * * *", "Europe/Berlin")
    got = cron.upcoming(ts("2027-03-27T12:00:00+01:00"), 2)
    assert [iso(t) for t in got] == [
        "2027-03-28T01:00:00+00:00",  # 03:00 CEST, the first valid time after the gap
        "2027-03-29T00:30:00+00:00",  # 02:30 CEST the next day
    ]


def test_fall_back_a_repeated_local_time_fires_once_at_its_first_occurrence() -> None:
    # Europe/Berlin 2027-10-31: 03:00 CEST -> 02:00 CET; 02:00-03:00 happens twice
    cron = Cron("30 2 * * *", "Europe/Berlin")
    got = cron.upcoming(ts("2027-10-30T12:00:00+02:00"), 2)
    assert [iso(t) for t in got] == [
        "2027-10-31T00:30:00+00:00",  # 02:30 CEST, the first 02:30
        "2027-11-01T01:30:00+00:00",  # 02:30 CET the next day; not 02:30 CET on the 31st
    ]


def test_fall_back_from_inside_the_repeated_hour_does_not_fire_it_again() -> None:
    cron = Cron("30 2 * * *", "Europe/Berlin")
    after_first = ts("2027-10-31T02:30:00+02:00")
    assert iso(cron.next_after(after_first)) == "2027-11-01T01:30:00+00:00"


def test_fall_back_an_hourly_wildcard_follows_real_time_through_both_hours() -> None:
    cron = Cron("30 * * * *", "Europe/Berlin")
    got = cron.upcoming(ts("2027-10-31T01:45:00+02:00"), 3)
    assert [iso(t) for t in got] == [
        "2027-10-31T00:30:00+00:00",  # 02:30 CEST
        "2027-10-31T01:30:00+00:00",  # 02:30 CET
        "2027-10-31T02:30:00+00:00",  # 03:30 CET
    ]


def test_spring_forward_a_daily_schedule_through_a_week_fires_once_a_day() -> None:
    cron = Cron("30 2 * * *", "Europe/Berlin")
    got = cron.upcoming(ts("2027-03-25T00:00:00+01:00"), 7)
    days = [datetime.fromtimestamp(t, cron.zone).date().isoformat() for t in got]
    assert days == [f"2027-03-{d}" for d in range(25, 32)]


@pytest.mark.parametrize(
    ("expression", "zone", "needle"),
    [
        ("*/5 * * *", "UTC", "invalid cron expression"),
        ("61 * * * *", "UTC", "invalid cron expression"),
        ("* * * * *", "Mars/Olympus", "unknown timezone"),
    ],
)
def test_bad_expressions_and_zones_say_what_is_wrong(
    expression: str, zone: str, needle: str
) -> None:
    with pytest.raises(CronError, match=needle):
        Cron(expression, zone)


# --- catch-up --------------------------------------------------------------------------------

MINUTELY = Cron("* * * * *", "UTC")
T0 = ts("2027-01-01T12:00:00+00:00")


def test_nothing_due_before_the_next_tick() -> None:
    plan = due(MINUTELY, next_fire_at=T0, now=T0 - 1, catch_up=CatchUp.NONE)
    assert plan.fire == [] and plan.next_fire_at == T0


def test_a_tick_handled_a_little_late_fires_whatever_the_catch_up() -> None:
    for mode in CatchUp:
        plan = due(MINUTELY, next_fire_at=T0, now=T0 + 5, catch_up=mode)
        assert plan.fire == [T0]
        assert plan.missed == 0
        assert plan.next_fire_at == T0 + 60


def test_several_ticks_within_the_grace_all_fire() -> None:
    every_second = Cron("* * * * * *", "UTC")
    plan = due(every_second, next_fire_at=T0, now=T0 + 3, catch_up=CatchUp.NONE)
    assert plan.fire == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert plan.next_fire_at == T0 + 4


def test_catch_up_none_skips_missed_ticks() -> None:
    now = T0 + 3600 + 10  # down for an hour
    plan = due(MINUTELY, next_fire_at=T0, now=now, catch_up=CatchUp.NONE)
    assert plan.fire == [T0 + 3600]  # the one still within the grace
    assert plan.missed == 60
    assert plan.next_fire_at == T0 + 3660


def test_catch_up_latest_fires_the_most_recent_missed_tick_once() -> None:
    now = T0 + 3600 + 10
    plan = due(MINUTELY, next_fire_at=T0, now=now, catch_up=CatchUp.LATEST)
    assert plan.fire == [T0 + 3600 - 60, T0 + 3600]
    assert plan.missed == 59


def test_catch_up_all_fires_every_missed_tick() -> None:
    now = T0 + 3600 + 10
    plan = due(MINUTELY, next_fire_at=T0, now=now, catch_up=CatchUp.ALL)
    assert plan.fire == [T0 + 60 * k for k in range(61)]
    assert plan.missed == 0


def test_catch_up_all_is_capped_to_the_most_recent_ticks() -> None:
    now = T0 + 5000 * 60 + 10
    plan = due(MINUTELY, next_fire_at=T0, now=now, catch_up=CatchUp.ALL)
    assert len(plan.fire) == CATCH_UP_CAP + 1  # the cap of missed ticks plus the on-time one
    assert plan.fire[-1] == T0 + 5000 * 60
    assert plan.fire[0] == T0 + (5000 - CATCH_UP_CAP) * 60
    assert plan.missed >= 1


def test_a_tick_exactly_at_the_grace_edge_is_missed() -> None:
    plan = due(MINUTELY, next_fire_at=T0, now=T0 + GRACE_SECONDS, catch_up=CatchUp.NONE)
    assert plan.fire == [T0 + 60]
    assert plan.missed == 1


# --- overlap ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overlap", "running", "action"),
    [
        (Overlap.ALLOW, True, OverlapAction.CREATE),
        (Overlap.ALLOW, False, OverlapAction.CREATE),
        (Overlap.SKIP, True, OverlapAction.SKIP),
        (Overlap.SKIP, False, OverlapAction.CREATE),
        (Overlap.CANCEL_PREVIOUS, True, OverlapAction.CANCEL_AND_CREATE),
        (Overlap.CANCEL_PREVIOUS, False, OverlapAction.CREATE),
    ],
)
def test_overlap_decision(overlap: Overlap, running: bool, action: OverlapAction) -> None:
    assert overlap_action(overlap, previous_running=running) is action
