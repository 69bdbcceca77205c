"""Timer triggers: fire each function at its NCRONTAB schedule (UTC) with an
`azure.functions.timer.TimerRequest` (`past_due` when it fires more than a second late).
`runOnStartup` functions fire once when the host starts."""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from azure.functions.timer import TimerRequest

from devhost.bindings import TimerFunction
from shared.ncrontab import Schedule, parse_schedule

log = logging.getLogger("kspyder.localhost")
PAST_DUE = 1.0   # seconds late before a tick counts as past due


def utcnow() -> datetime:
    return datetime.now(UTC)


def fire(function: TimerFunction, due: datetime | None, now: datetime, following: datetime) -> bool:
    """One invocation; True when it succeeded (a failure is logged and the schedule goes on)."""
    past_due = due is not None and (now - due).total_seconds() > PAST_DUE
    request = TimerRequest(past_due=past_due, schedule={"AdjustForDST": True},
                           schedule_status={"Last": (due or now).isoformat(), "Next": following.isoformat(),
                                            "LastUpdated": now.isoformat()})
    try:
        function.invoke(request)
        return True
    except Exception as exc:
        log.error("%s: timer invocation failed: %s", function.name, type(exc).__name__)
        return False


class TimerTriggers:
    def __init__(self, functions: tuple[TimerFunction, ...], env: Mapping[str, str],
                 clock: Callable[[], datetime] = utcnow):
        self.schedules: dict[str, tuple[TimerFunction, Schedule]] = {
            f.name: (f, parse_schedule(f.resolved_schedule(env))) for f in functions}
        self.clock = clock
        self.fired: dict[str, int] = {name: 0 for name in self.schedules}

    def start_up(self) -> None:
        now = self.clock()
        for function, schedule in self.schedules.values():
            if function.run_on_startup:
                fire(function, None, now, schedule.next_after(now))
                self.fired[function.name] += 1

    def run(self, stop: threading.Event) -> None:
        """Fire every schedule until `stop` is set (one thread for all timers, as they are rare)."""
        if not self.schedules:
            return
        now = self.clock()
        due = {name: schedule.next_after(now) for name, (_, schedule) in self.schedules.items()}
        while not stop.is_set():
            name = min(due, key=due.__getitem__)
            wait = (due[name] - self.clock()).total_seconds()
            if wait > 0 and stop.wait(min(wait, 1.0)):
                return
            if wait > 0:
                continue
            function, schedule = self.schedules[name]
            now = self.clock()
            following = schedule.next_after(now)
            fire(function, due[name], now, following)
            self.fired[name] += 1
            due[name] = following
