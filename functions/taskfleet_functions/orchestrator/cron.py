"""Cron schedules of automations: parsing, the times a schedule fires, and its EventBridge Scheduler form.

A schedule is 5 fields, `minute hour day-of-month month day-of-week`, each `*`, a number, a range `a-b`,
a step `*/n` or `a-b/n`, or a comma list of those; months and weekdays also by name (JAN, MON; Sunday is
0 or 7). It is read in UTC unless it starts with `CRON_TZ=<IANA zone> `. As in cron, when both day
fields are restricted a day matching either one fires. Pure functions: no AWS here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {
    m: i + 1 for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
}
WEEKDAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, MONTHS),
)
MAX_SCHEDULE_CHARS = 256
DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


class CronError(ValueError):
    """A schedule that is not a valid 5-field cron expression (the message says which part)."""


@dataclass(frozen=True)
class Schedule:
    text: str  # as given
    zone: str  # IANA name, UTC by default
    expression: str  # the 5 fields
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def matches(self, moment: datetime) -> bool:
        """Whether the schedule fires at this minute (`moment` in any zone; seconds are ignored)."""
        local = moment.astimezone(ZoneInfo(self.zone))
        if local.minute not in self.minutes or local.hour not in self.hours or local.month not in self.months:
            return False
        day = local.day in self.days
        weekday = (local.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day or weekday
        return day and weekday

    def times_between(self, start: datetime, end: datetime, limit: int = 10_000) -> list[datetime]:
        """The UTC minutes in (start, end] at which the schedule fires (at most `limit`)."""
        moment = start.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        found: list[datetime] = []
        while moment <= end and len(found) < limit:
            if self.matches(moment):
                found.append(moment)
            moment += timedelta(minutes=1)
        return found

    def eventbridge(self) -> tuple[str, str]:
        """(`cron(...)` for EventBridge Scheduler, its time zone). Its 6 fields number weekdays 1-7 from
        Sunday and need `?` in one day field; a schedule restricting both day fields has no such form."""
        minute, hour, dom, month, _ = self.expression.split()
        if self.days_restricted and self.weekdays_restricted:
            raise CronError(
                f"{self.text!r}: restricting both day-of-month and day-of-week has no EventBridge Scheduler form;"
                " use one of them (or two schedules)"
            )
        if self.weekdays_restricted:  # as a plain list of EventBridge's numbers (its field takes no steps)
            return f"cron({minute} {hour} ? {month} {','.join(str(d + 1) for d in sorted(self.weekdays))} *)", self.zone
        return f"cron({minute} {hour} {dom} {month} ? *)", self.zone


def _value(token: str, low: int, high: int, names: dict[str, int], what: str) -> int:
    key = token.upper()
    if key in names:
        return names[key]
    if not (token.isascii() and token.isdigit()):
        raise CronError(f"{what}: {token!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    value = int(token)
    if not low <= value <= high:
        raise CronError(f"{what}: {value} is outside {low}-{high}")
    return value


def _field(text: str, low: int, high: int, names: dict[str, int], what: str) -> tuple[frozenset[int], bool]:
    """A field's values, and whether it restricts (is not `*`)."""
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{what}: empty list item in {text!r}")
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise CronError(f"{what}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, low, high, names, what), _value(last, low, high, names, what)
            if start > end:
                raise CronError(f"{what}: range {body!r} runs backwards")
        else:
            start = _value(body, low, high, names, what)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values), text != "*"


def parse(text: str) -> Schedule:
    """A schedule from its text, or CronError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise CronError("a cron schedule must be a non-empty string like '0 6 * * MON-FRI'")
    if len(text) > MAX_SCHEDULE_CHARS:
        raise CronError(f"a cron schedule is at most {MAX_SCHEDULE_CHARS} characters")
    zone, rest = "UTC", text.strip()
    if rest.startswith("CRON_TZ="):
        zone, _, rest = rest.partition(" ")
        zone = zone.removeprefix("CRON_TZ=")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronError(f"CRON_TZ={zone}: not a time zone (an IANA name like Europe/Berlin)") from None
    fields = rest.split()
    if len(fields) != 5:
        raise CronError(
            f"{text!r} has {len(fields)} fields; a schedule has 5: minute hour day-of-month month day-of-week"
        )
    parsed = [_field(f, low, high, names, what) for f, (what, low, high, names) in zip(fields[:4], FIELDS, strict=True)]
    weekdays, weekdays_restricted = _field(fields[4], 0, 7, WEEKDAYS, "day-of-week")
    schedule = Schedule(
        text=text,
        zone=zone,
        expression=" ".join(fields),
        minutes=parsed[0][0],
        hours=parsed[1][0],
        days=parsed[2][0],
        months=parsed[3][0],
        weekdays=frozenset(d % 7 for d in weekdays),
        days_restricted=parsed[2][1],
        weekdays_restricted=weekdays_restricted,
    )
    never = schedule.days_restricted and not schedule.weekdays_restricted
    if never and not any(d <= DAYS_IN_MONTH[m] for m in schedule.months for d in schedule.days):
        raise CronError(f"{text!r} never fires (no such day in those months)")
    return schedule
