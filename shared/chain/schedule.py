"""Which sources a timer tick starts: each source's manifest `schedule:` (NCRONTAB, UTC) against
the window since the previous tick.

The Functions timer (`%KSPYDER_SCHEDULE%`, the app's own tick, say every 5 minutes) calls
`due_sources(project, tick, last_tick)`: a source is due when its schedule fires at least once in
(last_tick, tick]. Windows of consecutive ticks neither overlap nor leave gaps, so every firing
is seen by exactly one tick; a source that fired several times in one window (a schedule finer
than the tick, or ticks missed while the app was stopped) still starts one run.

`previous_fire(schedule, at)` gives the tick an invocation stands for (the host may call a little
late) and the tick before it, for the first tick when no previous one is recorded.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from shared.config.project import Project
from shared.ncrontab import Schedule, ScheduleError, parse_schedule

_LOOKBACKS = (timedelta(minutes=1), timedelta(hours=1), timedelta(days=1), timedelta(days=32),
              timedelta(days=366), timedelta(days=366 * 5))


def due_sources(project: Project, now: datetime, last_tick: datetime) -> list[str]:
    """Sources (manifest order) whose `schedule:` fires in (last_tick, now]; sources without a
    schedule are never due. Pure: the same arguments always give the same answer."""
    if now <= last_tick:
        return []
    due = []
    for name, source in project.sources.items():
        expression = getattr(source, "schedule", None)
        if expression and fires_between(parse_schedule(expression), last_tick, now):
            due.append(name)
    return due


def fires_between(schedule: Schedule, after: datetime, until: datetime) -> bool:
    """Does `schedule` fire in (after, until]?"""
    if until <= after:
        return False
    try:
        return schedule.next_after(after) <= until
    except ScheduleError:   # fires more than five years from now (a rare date): not in any window
        return False


def previous_fire(schedule: Schedule, at: datetime) -> datetime:
    """The latest time at or before `at` (whole seconds) when `schedule` fires."""
    at = at.replace(microsecond=0)
    for lookback in _LOOKBACKS:
        try:
            fire = schedule.next_after(at - lookback - timedelta(seconds=1))
        except ScheduleError:
            continue
        if fire > at:
            continue
        while True:
            following = schedule.next_after(fire)
            if following > at:
                return fire
            fire = following
    raise ScheduleError(f"schedule {schedule.expression!r} did not fire in the {_LOOKBACKS[-1].days} days before {at}")
