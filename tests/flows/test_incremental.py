"""Incremental models end to end, embedded (`run_models`, as `main.py run`) on SQLite, PostgreSQL and
MariaDB, and through the queue chain: a second run reads only what changed, the cursor commits with
the rows (a failure between them leaves both as they were), `rebuild` and `state reset` start over.

The API is the bundled sample API, whose customers take `updated_since` (records updated at or
after the moment, as GitHub's `since` or Harvest's `updated_since`) and carry `updated_at`.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from samples.sample_api import data
from samples.sample_api.server import ApiConfig, SampleApi
from shared.config.project import Project
from shared.ledger import RunLedger
from shared.load.cursor_state import list_state
from shared.pipeline import run_models
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.storage import LocalBlobStore
from shared.target.dialects import create_target_engine, drop_schema
from tests.helpers.flow import TEST_KEY, project_for
from tests.helpers.incremental import BASE, CUSTOMERS, ITEMS, customers_model, items_model, source_db


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")


class Setup:
    """A sample API, a SQLite source database and a target with the project's tables applied."""

    def __init__(self, tmp_path: Path, url: str, api: SampleApi, **incremental):
        suffix = uuid.uuid4().hex[:8]
        self.shop, self.erp = f"ki_shop_{suffix}", f"ki_erp_{suffix}"
        self.source = source_db(tmp_path / "erp.db")
        sources = {self.shop: {"type": "api", "base_url": api.base_url,
                               "models": {"customers": customers_model(**incremental)}},
                   self.erp: {"type": "sql", "url": f"sqlite:///{tmp_path / 'erp.db'}",
                              "models": {"items": items_model("table"), "by_query": items_model("query")}}}
        self.project: Project = project_for(tmp_path, sources, {"target_url": url,
                                                                "storage": {"root": str(tmp_path / "storage")}})
        self.engine = create_target_engine(url, [self.shop, self.erp])
        self.ledger = RunLedger(LocalBlobStore(tmp_path / "ledger"))
        self.apply()

    def apply(self) -> None:
        with self.engine.connect() as connection:
            plan = compute_plan(connection, self.project, PlanOptions(selectors=(self.shop, self.erp)))
        apply_stamped(self.engine, self.project, PlanStamp.of(plan))

    def run(self):
        summary = run_models(self.project, self.project.models(), engine=self.engine, ledger=self.ledger)
        assert summary.ok, summary.render()
        return {r.model.split(".", 1)[1]: r.stats.records for r in summary.results}

    def cursors(self) -> dict[str, str]:
        with self.engine.connect() as connection:
            return {s.model: s.cursor for source in (self.shop, self.erp) for s in list_state(connection, source)}

    def rows(self, sql: str) -> list:
        with self.engine.connect() as connection:
            return connection.exec_driver_sql(sql.format(shop=self.shop, erp=self.erp)).all()

    def change(self, config: ApiConfig) -> None:
        """Three customers and two items updated after everything loaded so far."""
        later = data.customer_updated(CUSTOMERS) + timedelta(hours=1)
        for i in (5, 17, 200):
            config.changes[i] = later
        with self.source.begin() as connection:
            connection.execute(ITEMS.update().where(ITEMS.c.id.in_([3, 50]))
                               .values(name="changed", updated_at=BASE + timedelta(days=1)))

    def close(self) -> None:
        if self.engine.dialect.name != "sqlite":
            with self.engine.begin() as connection:
                for schema in (self.shop, self.erp):
                    drop_schema(connection, schema)
        self.engine.dispose()
        self.source.dispose()


@pytest.fixture()
def setup(tmp_path, url):
    config = ApiConfig(customers=CUSTOMERS)
    with SampleApi(config) as api:
        made = Setup(tmp_path, url, api)
        made.config = config
        try:
            yield made
        finally:
            made.close()


def test_a_second_run_reads_only_what_changed(setup):
    assert setup.run() == {"customers": CUSTOMERS, "items": 100, "by_query": 100}
    assert setup.cursors() == {"customers": "2024-01-01T05:00:00Z", "items": "2024-01-01T00:33:00Z",
                               "by_query": "2024-01-01T00:33:00Z"}
    setup.change(setup.config)
    # the customer at the cursor comes again (updated_since is "at or after"): an upsert, nothing doubled
    assert setup.run() == {"customers": 4, "items": 2, "by_query": 2}
    assert setup.cursors() == {"customers": "2024-01-01T06:00:00Z", "items": "2024-01-02T00:00:00Z",
                               "by_query": "2024-01-02T00:00:00Z"}
    assert setup.rows("SELECT COUNT(*) FROM {shop}.customers") == [(CUSTOMERS,)]
    assert setup.rows("SELECT id FROM {erp}.items WHERE name = 'changed' ORDER BY id") == [(3,), (50,)]
    assert setup.run() == {"customers": 3, "items": 0, "by_query": 0}   # the lag-free cursor: nothing newer


def test_a_failure_between_the_rows_and_the_cursor_leaves_both_as_they_were(setup, monkeypatch):
    setup.run()
    before = setup.cursors()
    setup.change(setup.config)

    def crash(*args, **kwargs):
        raise RuntimeError("killed between the rows and the cursor")

    monkeypatch.setattr("shared.pipeline.incremental.write_state", crash)
    with pytest.raises(RuntimeError):
        run_models(setup.project, setup.project.models([f"{setup.shop}.customers"]), engine=setup.engine,
                   ledger=setup.ledger)
    assert setup.cursors() == before   # the batch's transaction took the rows back with the cursor
    assert setup.rows("SELECT COUNT(*) FROM {shop}.customers WHERE updated_at > '2024-01-01 05:30:00'") == [(0,)]
    monkeypatch.undo()
    assert setup.run()["customers"] == 4   # from the last committed cursor
    assert setup.rows("SELECT COUNT(*) FROM {shop}.customers WHERE updated_at > '2024-01-01 05:30:00'") == [(3,)]


def test_replaced_tables_and_reset_start_over(setup):
    setup.run()
    with setup.engine.begin() as connection:   # the table is dropped by hand: apply creates it anew, empty
        connection.exec_driver_sql(f"DROP TABLE {setup.erp}.items")
    setup.apply()
    assert "items" not in setup.cursors()
    assert setup.run()["items"] == 100   # refilled from initial_value, not from the old cursor


def test_state_show_and_reset_from_the_command_line(tmp_path, monkeypatch):
    config = ApiConfig(customers=CUSTOMERS)
    with SampleApi(config) as api:
        made = Setup(tmp_path, f"sqlite:///{tmp_path / 'target.db'}", api)
        try:
            made.run()
            monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
            runner = CliRunner()
            manifests = str(tmp_path / "manifests")
            shown = runner.invoke(cli, ["--manifests", manifests, "state", "show", made.erp])
            assert shown.exit_code == 0, shown.output
            assert [line.split("  ")[:3] for line in shown.output.splitlines()] == [
                [f"{made.erp}.by_query", "datetime", "2024-01-01T00:33:00Z"],
                [f"{made.erp}.items", "datetime", "2024-01-01T00:33:00Z"]]
            refused = runner.invoke(cli, ["--manifests", manifests, "state", "reset", f"{made.erp}.items"])
            assert refused.exit_code == 1 and "--auto-approve" in refused.output
            reset = runner.invoke(cli, ["--manifests", manifests, "state", "reset", f"{made.erp}.items",
                                        "--auto-approve"])
            assert reset.exit_code == 0 and "1 cursor(s) forgotten" in reset.output
            assert set(made.cursors()) == {"customers", "by_query"}
            unknown = runner.invoke(cli, ["--manifests", manifests, "state", "show", "nope"])
            assert unknown.exit_code == 1 and "unknown source 'nope'" in unknown.output
            rebuilt = runner.invoke(cli, ["--manifests", manifests, "rebuild", made.shop, "--auto-approve"])
            assert rebuilt.exit_code == 0, rebuilt.output
            with made.engine.connect() as connection:
                [saved] = list_state(connection, made.shop)
            assert saved.cursor == "2024-01-01T05:00:00Z" and made.rows("SELECT COUNT(*) FROM {shop}.customers") == [
                (CUSTOMERS,)]   # the rebuild's run refilled from initial_value
        finally:
            made.close()
