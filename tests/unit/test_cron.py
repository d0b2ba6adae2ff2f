"""Cron schedules of automations (orchestrator/cron.py): what they accept, when they fire, their
EventBridge Scheduler form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from taskfleet_functions.orchestrator.cron import CronError, parse


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_schedule_fires_at_the_minutes_it_names_in_utc_by_default():
    fires = parse("*/20 9-10 * * *").times_between(utc(2026, 12, 2, 9, 0), utc(2026, 12, 2, 11, 0))
    assert fires == [utc(2026, 12, 2, h, m) for h, m in ((9, 20), (9, 40), (10, 0), (10, 20), (10, 40))]


def test_cron_tz_reads_the_schedule_in_that_zone_across_a_dst_change():
    berlin = parse("CRON_TZ=Europe/Berlin 0 6 * * *")
    # 06:00 in Berlin is 05:00 UTC in winter and 04:00 UTC in summer
    assert berlin.times_between(utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 0, 0)) == [
        utc(2026, 3, 28, 5, 0),
        utc(2026, 3, 29, 4, 0),
    ]


def test_weekdays_by_name_and_number_and_either_day_field_when_both_are_restricted():
    weekdays = parse("0 12 * * MON-FRI")
    assert [d.day for d in weekdays.times_between(utc(2026, 11, 30), utc(2026, 12, 7))] == [30, 1, 2, 3, 4]
    assert parse("0 0 * * 7").matches(utc(2026, 12, 6, 0, 0))  # Sunday as 7
    both = parse("0 0 1 * SAT")  # the 1st or any Saturday, as cron does
    assert [d.day for d in both.times_between(utc(2026, 11, 30), utc(2026, 12, 13))] == [1, 5, 12]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * *", "has 3 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("0 0 30 2 *", "never fires"),
        ("CRON_TZ=Mars/Base 0 0 * * *", "not a time zone"),
        ("0 0 * * FUN", "day-of-week: 'FUN' is not a number or a name"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("5-1 * * * *", "runs backwards"),
        ("0,,5 * * * *", "empty list item"),
        ("", "non-empty string"),
        ("0 0 * * * *", "has 6 fields"),
        ("\u00b2 * * * *", "is not a number"),
        ("*/\u00b2 * * * *", "must be a positive number"),
    ],
)
def test_bad_schedules_say_what_is_wrong(text, message):
    with pytest.raises(CronError, match=message):
        parse(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*/15 * * * *", ("cron(*/15 * * * ? *)", "UTC")),
        ("0 0 1,15 * *", ("cron(0 0 1,15 * ? *)", "UTC")),
        ("0 6 * * MON-FRI", ("cron(0 6 ? * 2,3,4,5,6 *)", "UTC")),
        ("0 0 * * 0,6", ("cron(0 0 ? * 1,7 *)", "UTC")),
        ("0 0 * * 5-7", ("cron(0 0 ? * 1,6,7 *)", "UTC")),
        ("0 0 * * */2", ("cron(0 0 ? * 1,3,5,7 *)", "UTC")),  # EventBridge's weekday field takes no steps
        ("CRON_TZ=America/New_York 30 8 * * *", ("cron(30 8 * * ? *)", "America/New_York")),
    ],
)
def test_eventbridge_form(text, expected):
    assert parse(text).eventbridge() == expected


def test_both_day_fields_restricted_has_no_eventbridge_form():
    with pytest.raises(CronError, match="no EventBridge Scheduler form"):
        parse("0 0 1 * MON").eventbridge()
