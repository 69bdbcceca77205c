"""What a run pays per model besides its rows: one engine per SQL source for all its models, and
no second reflection of a table the run's own plan has just compared (`load/drift_memory.py`),
while a run without a plan, or after a failed load, still checks and names the drift. SQLite
source into SQLite and PostgreSQL targets."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from samples.sample_db import create_sample_db
from shared.config.project import load_project
from shared.extract.sql import SqlExtractor
from shared.load import drift_memory
from shared.load.loader import Loader
from shared.pipeline import run_models
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import compute_plan
from shared.target.dialects import create_target_engine, drop_schema
from tests.helpers.flow import TEST_KEY, write_manifests

ORDER_COLUMNS = {"order_id": {"type": "string", "length": 20}, "amount": {"type": "decimal", "precision": 12,
                                                                          "scale": 2}}
LINE_COLUMNS = {"order_id": {"type": "string", "length": 20}, "line_no": {"type": "integer"},
                "qty": {"type": "integer"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture()
def manifests(tmp_path, target):
    """Two SQL sources, each a sample database: three models of `kt_erp_…`, one of `kt_books_…`."""
    erp, books = f"kt_erp_{uuid.uuid4().hex[:6]}", f"kt_books_{uuid.uuid4().hex[:6]}"
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_sample_db(url, orders=30)
    create_sample_db(f"sqlite:///{tmp_path / 'books.db'}", orders=5)
    sources = {
        erp: {"type": "sql", "url": url, "models": {
            "orders": {"table": "orders", "primary_key": ["order_id"], "columns": ORDER_COLUMNS},
            "lines": {"table": "order_lines", "primary_key": ["order_id", "line_no"], "columns": LINE_COLUMNS},
            "big_orders": {"query": "SELECT order_id, amount FROM orders WHERE amount > 100",
                           "primary_key": ["order_id"], "columns": ORDER_COLUMNS}}},
        books: {"type": "sql", "url": f"sqlite:///{tmp_path / 'books.db'}", "models": {
            "orders": {"table": "orders", "primary_key": ["order_id"], "columns": ORDER_COLUMNS}}},
    }
    yield write_manifests(tmp_path, sources, {"target_url": target, "state_dir": str(tmp_path / "state"),
                                              "storage": {"root": str(tmp_path / "storage")}})
    if not target.startswith("sqlite"):
        engine = create_target_engine(target)
        with engine.begin() as connection:
            for schema in (erp, books):
                drop_schema(connection, schema)
        engine.dispose()


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch):
    monkeypatch.setattr(drift_memory, "_checked", {})


def applied(folder):
    project = load_project(folder, env={"KSPYDER_PII_KEY": TEST_KEY})
    engine = create_target_engine(project.settings.target_url, list(project.sources))
    with engine.connect() as connection:
        plan = compute_plan(connection, project)
    apply_stamped(engine, project, PlanStamp.of(plan))
    return project, engine


def spy(monkeypatch, cls, name):
    calls: list[object] = []
    original = getattr(cls, name)

    def wrapped(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(cls, name, wrapped)
    return calls


def test_the_models_of_a_sql_source_read_through_one_engine(manifests, monkeypatch):
    project, engine = applied(manifests)
    closed = spy(monkeypatch, SqlExtractor, "close")
    try:
        summary = run_models(project, project.models(), engine=engine)
    finally:
        engine.dispose()
    assert summary.ok, summary.render()
    extractors = {id(extractor): extractor for extractor in closed}.values()
    engines: dict[str, set[int]] = {}
    for extractor in extractors:
        engines.setdefault(extractor.ref.source_name, set()).add(id(extractor.engine))
    assert len(extractors) == 4 and sorted(len(ids) for ids in engines.values()) == [1, 1]
    assert len({i for ids in engines.values() for i in ids}) == 2   # each source its own


def test_main_py_run_trusts_its_own_plan_and_reflects_no_table_again(manifests, monkeypatch):
    applied(manifests)[1].dispose()
    checks = spy(monkeypatch, Loader, "check_drift")
    result = CliRunner().invoke(cli, ["--manifests", str(manifests), "run"], env={"KSPYDER_PII_KEY": TEST_KEY})
    assert result.exit_code == 0, result.output
    assert checks == []


def test_a_run_without_a_plan_checks_each_table_and_a_failed_load_makes_the_next_run_check_again(manifests,
                                                                                                     monkeypatch):
    project, engine = applied(manifests)
    checks = spy(monkeypatch, Loader, "check_drift")
    erp = next(name for name in project.sources if name.startswith("kt_erp_"))
    refs = project.models([f"{erp}.orders"])
    try:
        assert run_models(project, refs, engine=engine, planned=True).ok and checks == []
        assert run_models(project, refs, engine=engine).ok and checks == []   # the plan's check, still fresh
        with engine.begin() as connection:   # the table changes behind kspyder's back
            table = sa.Table("orders", sa.MetaData(), schema=erp, autoload_with=connection)
            connection.execute(sa.schema.DropTable(table))
            sa.Table("orders", sa.MetaData(), sa.Column("order_id", sa.Integer, primary_key=True),
                     schema=erp).create(connection)
        failed = run_models(project, refs, engine=engine)   # trusted: the load itself fails
        assert not failed.ok and checks == []
        again = run_models(project, refs, engine=engine)   # forgotten: the check names the drift
    finally:
        engine.dispose()
    assert len(checks) == 1 and not again.ok
    assert f"table {erp}.orders does not match the manifest" in again.results[0].error
