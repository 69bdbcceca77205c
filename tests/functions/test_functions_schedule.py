"""Manifest `schedule:` and the timer that starts scheduled runs: the due-sources logic table (pure),
the manifest check, and the real decorated timer function called with `TimerRequest` objects
against Azurite (ledger, tick claims, queues) and a SQLite target."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
import yaml
from azure.functions.timer import TimerRequest

from functions import common
from functions import schedule as timer_module
from functions.schedule import LAST_TICK, scheduled_runs, tick_name
from shared.chain.messages import RunModel, decode
from shared.chain.names import PAGINATE, RUNS, SCHEDULE_SETTING, STORAGE_SETTING
from shared.chain.schedule import due_sources, fires_between, previous_fire
from shared.config.errors import ConfigError
from shared.config.project import load_project
from shared.ledger import RunLedger
from shared.ncrontab import parse_schedule
from shared.storage.azure import AzureBlobStore
from shared.storage.queues import AzureQueueStore
from tests.helpers.chain import applied_target
from tests.helpers.flow import TEST_KEY, project_for

COUNTRIES = {"countries": {"path": "/v1/countries",
                           "columns": {"code": {"type": "string"}, "name": {"type": "string"}}}}


def at(hour: int, minute: int = 0, second: int = 0, day: int = 1, micro: int = 0) -> datetime:
    return datetime(2024, 1, day, hour, minute, second, micro, tzinfo=UTC)   # 2024-01-01 is a Monday


def sources(tmp_path) -> dict:
    api = {"type": "api", "base_url": "http://127.0.0.1:1", "models": COUNTRIES}
    return {
        "nightly": {**api, "schedule": "0 0 2 * * *"},            # 02:00 every day
        "quarter": {**api, "schedule": "0 */15 * * * *"},         # every 15 minutes
        "manual": dict(api),                                      # no schedule: never due
        "weekly": {"type": "sql", "url": f"sqlite:///{tmp_path / 'src.db'}", "schedule": "0 30 2 * * Mon",
                   "models": {"t": {"table": "t", "columns": {"id": {"type": "integer"}}}}},
    }


@pytest.mark.parametrize("last, now, due", [
    (at(1, 55), at(2, 0), ["nightly", "quarter"]),                    # a firing at `now` counts (closed end)
    (at(2, 0), at(2, 5), []),                                         # ... and not again (open start)
    (at(2, 0), at(2, 0), []),                                         # empty window
    (at(2, 5), at(2, 0), []),                                         # backwards: nothing
    (at(2, 10), at(2, 14, 59), []),
    (at(2, 10), at(2, 15), ["quarter"]),
    (at(2, 25), at(2, 30), ["quarter", "weekly"]),                    # Monday 02:30
    (at(2, 35), at(2, 30, day=2), ["nightly", "quarter"]),           # a day of ticks missed, into Tuesday
    (at(1, 59, 59, micro=500000), at(2, 0, 0, micro=1), ["nightly", "quarter"]),
    (at(2, 0, 0, micro=1), at(2, 4, 59), []),
    (at(3, 0, day=1), at(2, 29, day=8), ["nightly", "quarter"]),     # a week: every source once, not 7 runs
    (at(3, 0, day=1), at(2, 30, day=8), ["nightly", "quarter", "weekly"]),
])
def test_due_sources_logic_table(tmp_path, last, now, due):
    project = project_for(tmp_path, sources(tmp_path))
    assert due_sources(project, now, last) == due


def test_previous_fire_and_fires_between():
    every5 = parse_schedule("0 */5 * * * *")
    assert previous_fire(every5, at(2, 0)) == at(2, 0)
    assert previous_fire(every5, at(2, 4, 59, micro=999)) == at(2, 0)
    assert previous_fire(every5, at(2, 0) - timedelta(seconds=1)) == at(1, 55)
    monthly = parse_schedule("0 0 0 1 * *")
    assert previous_fire(monthly, at(12, day=20)) == at(0, day=1)
    every_second = parse_schedule("* * * * * *")
    assert previous_fire(every_second, at(2, 0, 7, micro=3)) == at(2, 0, 7)
    assert fires_between(every5, at(1, 55), at(2, 0)) and not fires_between(every5, at(2, 0), at(2, 4, 59))


@pytest.mark.parametrize("expression, message", [
    ("0 */5 * * *", "sources.nightly.schedule: '0 */5 * * *': expected 6 fields"),
    ("0 61 * * * *", "sources.nightly.schedule: minute: 61 is out of range 0-59"),
    ("0 0 0 30 Feb *", "sources.nightly.schedule: schedule '0 0 0 30 Feb *' never fires"),
    (5, "sources.nightly.schedule:"),
])
def test_a_bad_schedule_is_a_file_line_error_naming_the_key(tmp_path, expression, message):
    folder = tmp_path / "manifests"
    folder.mkdir()
    doc = {"sources": {"nightly": {"type": "api", "base_url": "http://127.0.0.1:1", "schedule": expression,
                                   "models": COUNTRIES}}}
    (folder / "connector_models.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_project(folder, env={})
    [issue] = info.value.issues
    assert str(issue).startswith("connector_models.yml:5 ") and message in str(issue), str(issue)


# ------------------------------------------------------------------ the timer function on Azurite

def drain(queues: AzureQueueStore) -> list[RunModel]:
    jobs = []
    while batch := queues.receive(PAGINATE, 32, 30):
        for message in batch:
            jobs.append(decode(message.body))
            queues.delete(PAGINATE, message)
    return jobs


def clean(blobs: AzureBlobStore) -> None:
    for name in blobs.list(RUNS, "schedule/"):
        blobs.delete(RUNS, name)


@pytest.fixture
def timer_env(azurite, tmp_path, monkeypatch):
    """Manifests with scheduled sources, a SQLite target with the plan applied, the app's settings,
    a host tick of every 5 minutes and a clock the test sets. Yields (set_clock, blobs, queues)."""
    project = project_for(tmp_path, sources(tmp_path))
    target = tmp_path / "target.db"
    applied_target(project, target).dispose()
    monkeypatch.setenv(STORAGE_SETTING, azurite.connection_string)
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{target}")
    monkeypatch.setenv(SCHEDULE_SETTING, "0 */5 * * * *")
    blobs = AzureBlobStore.from_connection_string(azurite.connection_string)
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    clean(blobs)
    drain(queues)
    now = {"t": at(0)}
    monkeypatch.setattr(timer_module, "clock", lambda: now["t"])

    def set_clock(value: datetime) -> None:
        now["t"] = value

    yield set_clock, blobs, queues
    common.dispose_engines()
    clean(blobs)
    drain(queues)


def tick(past_due: bool = False) -> None:
    scheduled_runs(TimerRequest(past_due=past_due))


def runs_of(jobs: list[RunModel], blobs: AzureBlobStore) -> dict[str, list[str]]:
    """run id -> its models, checking each run was started by the timer."""
    out: dict[str, list[str]] = {}
    for job in jobs:
        out.setdefault(job.run_id, []).append(job.model)
    for run_id in out:
        assert RunLedger(blobs).get(run_id).trigger == "timer"
    return {k: sorted(v) for k, v in out.items()}


def last_tick(blobs: AzureBlobStore) -> str | None:
    data = blobs.get(RUNS, LAST_TICK)
    return None if data is None else json.loads(data)["tick"]


def test_timer_starts_one_run_for_the_due_sources_once_per_tick(timer_env):
    set_clock, blobs, queues = timer_env
    set_clock(at(2, 0, 3))                  # the host calls 3 s late: the tick is 02:00, the window (01:55, 02:00]
    tick(past_due=True)
    [models] = runs_of(drain(queues), blobs).values()
    assert models == ["nightly.countries", "quarter.countries"]
    assert last_tick(blobs) == at(2, 0).isoformat()

    tick()                                  # the same tick delivered again: nothing more
    assert drain(queues) == []

    set_clock(at(2, 5))                     # another instance holds this tick's claim
    assert blobs.create(RUNS, tick_name(at(2, 5)), b"{}")
    tick()
    assert drain(queues) == [] and last_tick(blobs) == at(2, 0).isoformat()

    set_clock(at(2, 10))                    # window (02:00, 02:10]: nothing due, the tick still moves on
    tick()
    assert drain(queues) == [] and last_tick(blobs) == at(2, 10).isoformat()
    assert blobs.get(RUNS, tick_name(at(2, 0))) is None    # older claims are cleaned up

    set_clock(at(2, 31, 40))                # late; ticks 02:15..02:25 were missed: (02:10, 02:30]
    tick(past_due=True)
    [models] = runs_of(drain(queues), blobs).values()
    assert models == ["quarter.countries", "weekly.t"]


def test_a_failed_tick_leaves_its_sources_to_the_next(timer_env, tmp_path, monkeypatch):
    set_clock, blobs, queues = timer_env
    good = f"sqlite:///{tmp_path / 'target.db'}"
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{tmp_path / 'empty.db'}")   # tables missing: drift
    set_clock(at(2, 0))
    with pytest.raises(Exception, match="main.py"):
        tick()
    assert drain(queues) == [] and last_tick(blobs) == at(1, 55).isoformat()   # the window is kept

    common.dispose_engines()
    monkeypatch.setenv("KSPYDER_TARGET_URL", good)
    set_clock(at(2, 5))                     # window (01:55, 02:05]: nightly is still due
    tick()
    [models] = runs_of(drain(queues), blobs).values()
    assert models == ["nightly.countries", "quarter.countries"]


def test_timer_binding_reads_the_app_setting():
    app = func.FunctionApp()
    app.register_functions(timer_module.bp)
    [function] = app.get_functions()
    trigger = function.get_trigger().get_dict_repr()
    assert function.get_function_name() == "scheduled_runs"
    assert trigger["type"] == "timerTrigger" and trigger["schedule"] == f"%{SCHEDULE_SETTING}%"
