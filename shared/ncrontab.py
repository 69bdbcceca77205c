"""NCRONTAB schedules as Azure Functions timer triggers use them: six fields, seconds first.

    {second} {minute} {hour} {day} {month} {day-of-week}

Each field: `*`, a number, a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a comma list of
those. Months accept Jan..Dec, days of week Sun..Sat (0-6; 7 is Sunday too). As in NCrontab (the
library the host uses), a time matches when *every* field matches: day-of-month and day-of-week
are both required, unlike Unix cron's "either". Times are UTC (the host's default without
WEBSITE_TIME_ZONE).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = {n: i + 1 for i, n in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {n: i for i, n in enumerate("sun mon tue wed thu fri sat".split())}
_NO_NAMES: dict[str, int] = {}
_FIELDS = (("second", 0, 59, _NO_NAMES), ("minute", 0, 59, _NO_NAMES), ("hour", 0, 23, _NO_NAMES),
           ("day", 1, 31, _NO_NAMES), ("month", 1, 12, _MONTHS), ("day-of-week", 0, 7, _DAYS))
MAX_SEARCH = timedelta(days=366 * 5)


class ScheduleError(ValueError):
    pass


def _value(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    text = text.strip().lower()
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ScheduleError(f"{name}: {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ScheduleError(f"{name}: {value} is out of range {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ScheduleError(f"{name}: empty item in {text!r}")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if start > end:
                raise ScheduleError(f"{name}: range {base!r} runs backwards")
        else:
            start = _value(base, name, low, high, names)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]     # 0 = Sunday

    def matches(self, at: datetime) -> bool:
        return (at.second in self.seconds and at.minute in self.minutes and at.hour in self.hours
                and at.day in self.days and at.month in self.months and (at.isoweekday() % 7) in self.weekdays)

    def next_after(self, after: datetime) -> datetime:
        """The first matching time strictly after `after` (whole seconds, same tzinfo)."""
        at = after.replace(microsecond=0) + timedelta(seconds=1)
        limit = after + MAX_SEARCH
        while at <= limit:
            if at.month not in self.months:
                at = (at.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif at.day not in self.days or (at.isoweekday() % 7) not in self.weekdays:
                at = at.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = at.replace(minute=0, second=0) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at = at.replace(second=0) + timedelta(minutes=1)
            elif at.second not in self.seconds:
                at += timedelta(seconds=1)
            else:
                return at
        raise ScheduleError(f"schedule {self.expression!r} never fires within {MAX_SEARCH.days} days")


def parse_schedule(expression: str) -> Schedule:
    """A six-field NCRONTAB expression; ScheduleError saying which field is wrong otherwise."""
    fields = expression.split()
    if len(fields) != 6:
        raise ScheduleError(f"{expression!r}: expected 6 fields (second minute hour day month day-of-week), "
                            f"got {len(fields)}")
    seconds, minutes, hours, days, months, weekdays = (
        _field(text, *spec) for text, spec in zip(fields, _FIELDS, strict=True))
    schedule = Schedule(expression, seconds, minutes, hours, days, months, frozenset(d % 7 for d in weekdays))
    schedule.next_after(datetime(2000, 1, 1))   # an impossible date (Feb 30) is an error now, not later
    return schedule
