"""The timer (`%KSPYDER_SCHEDULE%`, NCRONTAB, UTC): the app's own tick, say every 5 minutes.

Each tick starts one run (trigger "timer") of the sources whose manifest `schedule:` fired since
the previous tick (`shared.chain.schedule.due_sources`), and nothing when none did.

- The tick an invocation stands for is the latest time `KSPYDER_SCHEDULE` fires at or before
  now (the host may call a little late); the previous tick is the one recorded in
  `kspyder-runs/schedule/last_tick`, or, the first time, the schedule's occurrence before this tick.
- Two instances firing the same tick (or a tick delivered twice): the tick is claimed with a
  conditional create of `kspyder-runs/schedule/ticks/<tick>`; only the winner starts the run.
- `last_tick` is recorded before the first tick's work and moves only after the run started, so a
  tick that fails (say the target needs `main.py apply`) leaves its sources to the next tick
  instead of dropping them.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import azure.functions as func

from functions.common import current_project, open_chain, stores
from shared.chain.names import RUNS, SCHEDULE_SETTING
from shared.chain.schedule import due_sources, previous_fire
from shared.ncrontab import parse_schedule
from shared.storage import BlobStore

bp = func.Blueprint()
log = logging.getLogger("kspyder.functions")

LAST_TICK = "schedule/last_tick"
TICK_CLAIMS = "schedule/ticks/"
TRIGGER = "timer"


def utcnow() -> datetime:
    return datetime.now(UTC)


clock: Callable[[], datetime] = utcnow   # tests replace it


def tick_name(tick: datetime) -> str:
    return TICK_CLAIMS + tick.strftime("%Y%m%dT%H%M%SZ")


def _tick_json(tick: datetime) -> bytes:
    return json.dumps({"tick": tick.isoformat()}).encode()


def read_last_tick(blobs: BlobStore) -> datetime | None:
    data = blobs.get(RUNS, LAST_TICK)
    if data is None:
        return None
    try:
        value = datetime.fromisoformat(json.loads(data)["tick"])
    except (ValueError, KeyError, TypeError):
        log.warning("%s/%s is not readable: treating this as the first tick", RUNS, LAST_TICK)
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@bp.function_name("scheduled_runs")
@bp.timer_trigger(schedule=f"%{SCHEDULE_SETTING}%", arg_name="timer", run_on_startup=False)
def scheduled_runs(timer: func.TimerRequest) -> None:
    host_schedule = parse_schedule(os.environ.get(SCHEDULE_SETTING, ""))
    tick = previous_fire(host_schedule, clock().astimezone(UTC))
    blobs, _ = stores()
    last = read_last_tick(blobs)
    if last is None:   # the first tick: its window starts at the schedule's occurrence before it, recorded
        last = previous_fire(host_schedule, tick - timedelta(seconds=1))   # so a failure keeps the window
        blobs.create(RUNS, LAST_TICK, _tick_json(last))
        last = read_last_tick(blobs) or last
    if last >= tick:
        log.info("timer tick %s was handled already", tick.isoformat())
        return
    if not blobs.create(RUNS, tick_name(tick), _tick_json(tick)):
        log.info("timer tick %s is handled by another instance", tick.isoformat())
        return
    project = current_project()
    due = due_sources(project, tick, last)
    if due:
        with open_chain(project) as chain:
            run_id = chain.start_run(due, TRIGGER)
        log.info("timer tick %s%s: run %s started for %s", tick.isoformat(), " (past due)" if timer.past_due else "",
                 run_id, ", ".join(due))
    else:
        log.info("timer tick %s: no source is due", tick.isoformat())
    blobs.put(RUNS, LAST_TICK, _tick_json(tick))
    blobs.delete(RUNS, tick_name(last))   # the claim of the previous tick is no longer needed
