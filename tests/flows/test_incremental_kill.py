"""`main.py run` SIGKILLed during an incremental run: the committed cursor never passes the rows
loaded (every change at or below it is in the table), and the rerun reads from it and completes."""
from __future__ import annotations

import signal
import time
from datetime import timedelta

import sqlalchemy as sa

from samples.sample_api import data
from samples.sample_api.server import ApiConfig, SampleApi
from shared.extract.cursor import read_cursor
from shared.load.cursor_state import list_state
from tests.helpers.chain import applied_target
from tests.helpers.flow import project_for
from tests.helpers.incremental import customers_model
from tests.helpers.main_process import start

CUSTOMERS = 12_000
CHANGED = range(1_001, CUSTOMERS)   # past two load batches of 5,000: a kill lands between batches


def committed(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        saved = list_state(connection, "shop")
    return saved[0].cursor if saved else None


def test_a_killed_incremental_run_leaves_cursor_and_rows_consistent_and_the_rerun_completes(tmp_path):
    config = ApiConfig(customers=CUSTOMERS)
    with SampleApi(config) as api:
        model = customers_model(sorted="asc")   # changed ids come in id order, which is their update order
        model["pagination"]["size"] = 500
        model["pii_scan"] = "off"
        target = tmp_path / "target.db"
        settings = {"target_url": f"sqlite:///{target}", "storage": {"root": str(tmp_path / "storage")},
                    "leases": {"ttl_seconds": 1.0}}   # the killed run's lease expires soon
        project = project_for(tmp_path, {"shop": {"type": "api", "base_url": api.base_url,
                                                  "models": {"customers": model}}}, settings)
        engine = applied_target(project, target)
        folder = tmp_path / "manifests"
        try:
            first = start(folder)
            _, err = first.communicate(timeout=120)
            assert first.returncode == 0, err[-2000:]
            after_full = committed(engine)
            assert read_cursor(after_full) == read_cursor(data.customer_updated(CUSTOMERS))

            base = data.customer_updated(CUSTOMERS)
            for i in CHANGED:   # each a second after the one before
                config.changes[i] = base + timedelta(hours=1, seconds=i)
            config.latency_ms = 60   # slow enough to catch the run between its batches
            run = start(folder)
            deadline = time.monotonic() + 60
            while committed(engine) == after_full and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.02)
            run.send_signal(signal.SIGKILL)   # the run started here (pii_scan off: no scan child)
            run.wait(timeout=30)
            cursor = read_cursor(committed(engine))
            assert cursor is not None and cursor > read_cursor(after_full)   # killed after one batch at least

            with engine.connect() as connection:
                loaded = dict(connection.exec_driver_sql("SELECT id, updated_at FROM shop.customers").all())
            covered = [i for i in CHANGED if read_cursor(config.changes[i]) <= cursor]
            assert covered and len(covered) < len(CHANGED)   # killed mid-run
            assert all(read_cursor(loaded[i]) == read_cursor(config.changes[i]) for i in covered)

            config.latency_ms = 0
            rerun = start(folder, "--wait", "10")
            _, err = rerun.communicate(timeout=120)
            assert rerun.returncode == 0, err[-2000:]
            with engine.connect() as connection:
                loaded = dict(connection.exec_driver_sql("SELECT id, updated_at FROM shop.customers").all())
            assert len(loaded) == CUSTOMERS
            assert all(read_cursor(loaded[i]) == read_cursor(config.changes[i]) for i in CHANGED)
            assert read_cursor(committed(engine)) == read_cursor(config.changes[CHANGED[-1]])
        finally:
            engine.dispose()
