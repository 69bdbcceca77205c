"""Mistakes caught before anything is created: `plan` (and `validate --sources`, and the schema
plan route) read each SQL source's catalogue and refuse, listing every missing table and column
at once, before a target table exists. Sources on SQLite, PostgreSQL and MariaDB built here."""
from __future__ import annotations

import json
import uuid

import azure.functions as func
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from functions import common
from functions.schema_routes import schema_plan
from shared.extract.sql_check import sql_source_problems
from tests.helpers.flow import TEST_KEY, project_for

PLANTED = "alice.planted@example.com"   # a value in the source: never in any message


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def source(request, tmp_path):
    """(url, schema prefix for table names) of a source with customers(id, email) and orders(id, amount)."""
    if request.param == "sqlite":
        url, schema = f"sqlite:///{tmp_path / 'source.db'}", None
    else:
        url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
        schema = "kt_src_" + uuid.uuid4().hex[:10]
    engine = sa.create_engine(url)
    metadata = sa.MetaData(schema=schema)
    customers = sa.Table("customers", metadata, sa.Column("id", sa.Integer, primary_key=True),
                         sa.Column("email", sa.String(100)))
    sa.Table("orders", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("amount", sa.Numeric(10, 2)))
    with engine.begin() as connection:
        if schema:
            connection.execute(sa.schema.CreateSchema(schema))
        metadata.create_all(connection)
        connection.execute(customers.insert(), [{"id": 1, "email": PLANTED}])
    yield url, (f"{schema}." if schema else "")
    if schema:
        with engine.begin() as connection:
            metadata.drop_all(connection)
            connection.execute(sa.schema.DropSchema(schema))
    engine.dispose()


def manifests(tmp_path, url: str, prefix: str) -> None:
    """One source with two good models and four mistakes, and an API source that is not checked."""
    models = {
        "customers": {"table": f"{prefix}customers", "primary_key": ["id"],
                      "columns": {"id": {"type": "integer"}, "email": {"type": "string", "pii": "hash"}}},
        "orders": {"table": f"{prefix}orders", "primary_key": ["id"],
                   "columns": {"id": {"type": "integer"}, "total": {"type": "decimal", "path": "amount_total"},
                               "amount": {"type": "decimal"}, "note": {"type": "text"}}},
        "ghost": {"table": f"{prefix}ordres", "columns": {"id": {"type": "integer"}}},
        "labels": {"query": f"SELECT id, email AS label FROM {prefix}customers",
                   "columns": {"id": {"type": "integer"}, "label": {"type": "string", "pii": "hash"},
                               "email": {"type": "string", "pii": "hash"}}},
    }
    project_for(tmp_path, {"shop": {"type": "sql", "url": url, "models": models},
                           "api": {"type": "api", "base_url": "http://127.0.0.1:1", "models": {
                               "things": {"path": "/things", "columns": {"id": {"type": "integer"}}}}}},
                {"target_url": f"sqlite:///{tmp_path / 'target.db'}"})


def expected(prefix: str) -> list[str]:
    return [
        f"shop.orders: column total: table {prefix}orders has no column amount_total (did you mean amount?)",
        f"shop.orders: column note: table {prefix}orders has no column note",
        f"shop.ghost: table {prefix}ordres does not exist in the source database (did you mean orders?)",
        "shop.labels: column email: the query's result has no column email",
    ]


def invoke(tmp_path, *args: str):
    return CliRunner().invoke(cli, ["--manifests", str(tmp_path / "manifests"), *args],
                              env={"KSPYDER_PII_KEY": TEST_KEY}, catch_exceptions=False)


def test_plan_lists_every_mismatch_and_creates_nothing(tmp_path, source):
    url, prefix = source
    manifests(tmp_path, url, prefix)
    result = invoke(tmp_path, "plan")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "error: the SQL sources do not match the manifests (4 problems; nothing was planned):" in lines
    assert [line.strip() for line in lines if line.startswith("  ")] == expected(prefix)
    assert result.stdout == ""                                       # no plan offered
    assert PLANTED not in result.output and "alice" not in result.output
    assert not (tmp_path / "target.shop.db").exists()
    applied = invoke(tmp_path, "apply", "--auto-approve")
    assert applied.exit_code == 1 and "+ create" not in applied.output
    assert not (tmp_path / "target.shop.db").exists()


def test_validate_checks_sources_only_when_asked(tmp_path, source):
    url, prefix = source
    manifests(tmp_path, url, prefix)
    assert invoke(tmp_path, "validate").exit_code == 0                  # opt-in: it connects
    result = invoke(tmp_path, "validate", "--sources")
    assert result.exit_code == 1
    assert [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")] == expected(prefix)
    assert PLANTED not in result.output


def test_matching_sources_pass(tmp_path, source):
    url, prefix = source
    project = project_for(tmp_path, {"shop": {"type": "sql", "url": url, "models": {
        "orders": {"table": f"{prefix}orders", "columns": {"id": {"type": "integer"}, "amount": {"type": "decimal"}}},
        "mails": {"query": f"SELECT id, email FROM {prefix}customers WHERE id > 0",
                  "columns": {"id": {"type": "integer"}, "email": {"type": "string", "pii": "hash"}}}}}},
        {"target_url": f"sqlite:///{tmp_path / 'target.db'}"})
    assert sql_source_problems(project.models()) == []
    result = invoke(tmp_path, "validate", "--sources")
    assert result.exit_code == 0 and "sources OK: 1 SQL source match the manifests" in result.stderr
    assert invoke(tmp_path, "plan").exit_code == 2                       # the plan is offered


def test_a_failing_query_and_an_absent_file_are_reported_not_raised(tmp_path):
    source = tmp_path / "source.db"
    engine = sa.create_engine(f"sqlite:///{source}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE t (id INTEGER)"))
    engine.dispose()
    project = project_for(tmp_path, {
        "good": {"type": "sql", "url": f"sqlite:///{source}", "models": {
            "broken": {"query": "SELECT id FROM no_such_table", "columns": {"id": {"type": "integer"}}},
            "after": {"table": "t", "columns": {"id": {"type": "integer"}, "x": {"type": "integer"}}}}},
        "gone": {"type": "sql", "url": f"sqlite:///{tmp_path / 'missing.db'}", "models": {
            "m": {"table": "t", "columns": {"id": {"type": "integer"}}}}}})
    problems = sql_source_problems(project.models())
    assert problems[0].startswith("good.broken: the query fails on the source: OperationalError: no such table")
    assert problems[1:] == ["good.after: column x: table t has no column x",
                            "gone: the source database file does not exist (check the source's url)"]
    assert not (tmp_path / "missing.db").exists()                       # checking never creates a source


def test_schema_plan_route_refuses_with_every_problem(tmp_path, monkeypatch):
    source = tmp_path / "source.db"
    engine = sa.create_engine(f"sqlite:///{source}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE orders (id INTEGER, amount NUMERIC)"))
    engine.dispose()
    manifests(tmp_path, f"sqlite:///{source}", "")
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{tmp_path / 'target.db'}")
    try:
        response = schema_plan(func.HttpRequest("GET", "http://localhost/api/schema/plan", body=b""))
    finally:
        common.dispose_engines()
    assert response.status_code == 409
    body = json.loads(response.get_body())
    assert body["problems"][0] == "shop.customers: table customers does not exist in the source database"
    total = "shop.orders: column total: table orders has no column amount_total (did you mean amount?)"
    assert total in body["problems"]
    assert body["error"].startswith("the SQL sources do not match the manifests (")
    assert not (tmp_path / "target.shop.db").exists()
