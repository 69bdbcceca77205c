"""plan / apply / rebuild as a user runs them, against SQLite, PostgreSQL and MariaDB.

Each test owns a schema prefix (`kt_plan_<hash>_`) and passes it as --scope, so that on a shared
server a plan never sees (or offers to drop) another test's schemas.
"""
from __future__ import annotations

import hashlib
import sys
import types
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import click
import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from cli import schema_cmd
from cli.context import CliState
from shared.config.project import load_project
from shared.schema.apply import STALE
from shared.schema.plan import PlanOptions, compute_plan
from shared.target.columns import LOADED_AT, RUN_ID
from shared.target.compare import compare_table, table_reflection
from shared.target.dialects import create_target_engine, drop_schema
from shared.target.tables import desired_columns
from tests.helpers.flow import TEST_KEY, project_for


@click.group()
@click.option("--manifests")
@click.pass_context
def cli(ctx: click.Context, manifests: str) -> None:
    ctx.obj = CliState(manifests, 0)


cli.add_command(schema_cmd.plan)
cli.add_command(schema_cmd.apply)
cli.add_command(schema_cmd.rebuild)


def model(columns: dict, key: tuple[str, ...] = ("id",)) -> dict:
    return {"table": "anything", "primary_key": list(key), "columns": {n: {"type": t} if isinstance(t, str) else t
                                                                        for n, t in columns.items()}}


@dataclass
class Target:
    url: str
    prefix: str
    tmp_path: Path

    def __call__(self, name: str) -> str:
        return self.prefix + name

    def manifests(self, sources: dict[str, dict[str, dict]], settings: dict | None = None) -> None:
        """Write the manifests: {source: {model: model(...)}}, source names prefixed, each over a
        SQLite source made to match (plan checks the sources' tables and columns)."""
        project_for(self.tmp_path, {self(s): {"type": "sql", "url": self.source(s, models),
                                              "models": {m: {**spec, "table": m} for m, spec in models.items()}}
                                    for s, models in sources.items()}, {"target_url": self.url, **(settings or {})})

    def source(self, name: str, models: dict[str, dict]) -> str:
        """A SQLite source with one table per model, holding the columns the model reads."""
        url = f"sqlite:///{self.tmp_path / f'source_{name}.db'}"
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                for table, spec in models.items():
                    columns = dict.fromkeys((c.get("path") or n).split(".")[0] for n, c in spec["columns"].items())
                    connection.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
                    connection.execute(sa.text(f'CREATE TABLE "{table}" ({", ".join(f"{c!r}" for c in columns)})'
                                               .replace("'", '"')))
        finally:
            engine.dispose()
        return url

    def cli(self, *args: str, stdin: str | None = None):
        return CliRunner().invoke(cli, ["--manifests", str(self.tmp_path / "manifests"), *args], input=stdin,
                                  env={"KSPYDER_PII_KEY": TEST_KEY}, catch_exceptions=False)

    def plan(self, *args: str):
        return self.cli("plan", "--scope", self.prefix + "*", *args)

    def apply(self, *args: str):
        return self.cli("apply", "--scope", self.prefix + "*", "--auto-approve", *args)

    def engine(self) -> sa.Engine:
        return create_target_engine(self.url)   # SQLite: attaches every schema file on disk

    def run(self, work):
        engine = self.engine()
        try:
            with engine.begin() as connection:
                return work(connection)
        finally:
            engine.dispose()

    def schemas(self) -> list[str]:
        return self.run(lambda c: [s for s in sa.inspect(c).get_schema_names() if s.startswith(self.prefix)
                                   and sa.inspect(c).get_table_names(schema=s)])

    def tables(self, schema: str) -> list[str]:
        """The schema's tables but its `_kspyder` project mark (tests/schema/test_ownership.py covers that)."""
        return self.run(lambda c: sorted(t for t in sa.inspect(c).get_table_names(schema=self(schema))
                                         if t != "_kspyder")
                        if self(schema) in sa.inspect(c).get_schema_names() else [])

    def columns(self, schema: str, table: str) -> list[str]:
        return self.run(lambda c: [col["name"] for col in sa.inspect(c).get_columns(table, schema=self(schema))])

    def insert(self, schema: str, table: str, rows: list[dict]) -> None:
        self.run(lambda c: c.execute(sa.Table(table, sa.MetaData(), schema=self(schema), autoload_with=c).insert(),
                                     rows))

    def rows(self, schema: str, table: str) -> list[dict]:
        def select(c):
            t = sa.Table(table, sa.MetaData(), schema=self(schema), autoload_with=c)
            return [dict(r._mapping) for r in c.execute(sa.select(t).order_by(*t.primary_key.columns or t.columns))]
        return self.run(select)

    def drop_all(self) -> None:
        def drop(c):
            for schema in sa.inspect(c).get_schema_names():
                if schema.startswith(self.prefix):
                    drop_schema(c, schema)
        self.run(drop)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def t(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'target.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
    prefix = "kt_plan_" + hashlib.sha1(request.node.nodeid.encode(), usedforsecurity=False).hexdigest()[:8] + "_"
    target = Target(url, prefix, tmp_path)
    target.drop_all()
    yield target
    target.drop_all()


def run_id(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in (RUN_ID, LOADED_AT)}


PRODUCTS = {"id": "integer", "name": {"type": "string", "length": 50}, "colour": {"type": "string", "length": 20}}
ORDERS = model({"order_id": "integer", "line_no": "integer",
                "amount": {"type": "decimal", "precision": 12, "scale": 2}},
               key=("order_id",))


def test_create_from_nothing_then_no_changes(t):
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    first = t.plan()
    assert first.exit_code == 2, first.output
    assert first.stdout.splitlines() == [
        f"+ create schema {t('shop')}",
        f"+ create table {t('shop')}.products (3 columns, key id)",
        f"Plan: 2 to create, 0 to change, 0 to replace, 0 to drop. Re-extract after apply: {t('shop')}.products"]
    applied = t.apply()
    assert applied.exit_code == 0, applied.output
    assert "Apply complete: 2 created, 0 changed, 0 replaced, 0 dropped." in applied.stdout
    assert t.columns("shop", "products") == ["id", "name", "colour", RUN_ID, LOADED_AT]
    again = t.plan()
    assert (again.exit_code, again.stdout.strip()) == (0, "No changes. The target matches the manifests.")


def test_add_column_keeps_the_data_of_other_columns(t):
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    assert t.apply().exit_code == 0
    t.insert("shop", "products", [{"id": 1, "name": "mug", "colour": "red", RUN_ID: "r1"}])
    t.manifests({"shop": {"products": model({**PRODUCTS, "weight": "float"})}})
    planned = t.plan()
    assert planned.exit_code == 2
    assert planned.stdout.splitlines() == [f"~ add column {t('shop')}.products.weight FLOAT",
                                           "Plan: 0 to create, 1 to change, 0 to replace, 0 to drop."]
    assert t.apply().exit_code == 0
    assert [run_id(r) for r in t.rows("shop", "products")] == [{"id": 1, "name": "mug", "colour": "red",
                                                                 "weight": None}]
    assert t.plan().exit_code == 0


def test_remove_a_column(t):
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    assert t.apply().exit_code == 0
    t.insert("shop", "products", [{"id": 1, "name": "mug", "colour": "red", RUN_ID: "r1"}])
    t.manifests({"shop": {"products": model({"id": "integer", "name": PRODUCTS["name"]})}})
    planned = t.plan()
    assert planned.exit_code == 2 and f"~ drop column {t('shop')}.products.colour" in planned.stdout
    assert t.apply().exit_code == 0
    assert [run_id(r) for r in t.rows("shop", "products")] == [{"id": 1, "name": "mug"}]
    assert t.plan().exit_code == 0


def test_type_change_replaces_the_table_and_asks_for_re_extraction(t):
    t.manifests({"erp": {"orders": ORDERS}})
    assert t.apply().exit_code == 0
    t.insert("erp", "orders", [{"order_id": 1, "line_no": 1, "amount": 9.5, RUN_ID: "r1"}])
    t.manifests({"erp": {"orders": model({**ORDERS["columns"], "amount": {"type": "text"}}, key=("order_id",))}})
    planned = t.plan()
    assert planned.exit_code == 2
    assert planned.stdout.splitlines() == [
        f"-/+ replace table {t('erp')}.orders (reason: type of amount changes DECIMAL(12,2) -> TEXT)",
        f"Plan: 0 to create, 0 to change, 1 to replace, 0 to drop. Re-extract after apply: {t('erp')}.orders"]
    applied = t.apply()
    assert f"Re-extract: {t('erp')}.orders (apply --refill runs them)" in applied.stdout
    assert t.rows("erp", "orders") == []
    assert t.plan().exit_code == 0


def test_primary_key_change_replaces_the_table(t):
    t.manifests({"erp": {"orders": ORDERS}})
    assert t.apply().exit_code == 0
    t.manifests({"erp": {"orders": model(ORDERS["columns"], key=("order_id", "line_no"))}})
    planned = t.plan()
    assert f"-/+ replace table {t('erp')}.orders (reason: primary key changes (order_id) -> (order_id, line_no))" \
        in planned.stdout
    assert t.apply().exit_code == 0
    assert t.plan().exit_code == 0


def test_removed_model_is_kept_unless_pruned(t):
    t.manifests({"shop": {"products": model(PRODUCTS), "legacy": model({"id": "integer"})}})
    assert t.apply().exit_code == 0
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    kept = t.plan()
    assert kept.exit_code == 0
    assert f"{t('shop')}.legacy is no longer in the manifests (kept; use --prune to drop it)" in kept.stdout
    assert t.apply().exit_code == 0 and t.tables("shop") == ["legacy", "products"]
    pruned = t.plan("--prune")
    assert pruned.exit_code == 2 and pruned.stdout.splitlines() == [
        f"- drop table {t('shop')}.legacy", "Plan: 0 to create, 0 to change, 0 to replace, 1 to drop."]
    assert t.apply("--prune").exit_code == 0
    assert t.tables("shop") == ["products"]
    assert t.plan("--prune").exit_code == 0


def test_removed_source_is_dropped_with_prune(t):
    t.manifests({"shop": {"products": model(PRODUCTS)},
                 "old": {"a": model({"id": "integer"}), "b": model({"id": "integer"})}})
    assert t.apply().exit_code == 0
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    kept = t.plan()
    assert (kept.exit_code, kept.stdout.splitlines()[0]) == (
        0, f"schema {t('old')} is no longer in the manifests (kept; use --prune to drop it)")
    pruned = t.plan("--prune")
    assert pruned.stdout.splitlines()[0] == f"- drop schema {t('old')} (2 tables: a, b)"
    assert t.apply("--prune").exit_code == 0
    assert t.schemas() == [t("shop")] and t.tables("old") == []
    assert t.plan("--prune").exit_code == 0


def test_stale_plan_is_refused(t, tmp_path):
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    assert t.apply().exit_code == 0
    t.manifests({"shop": {"products": model({**PRODUCTS, "weight": "float"})}})
    assert t.plan("--out", str(tmp_path / "plan.json")).exit_code == 2
    t.run(lambda c: Operations(MigrationContext.configure(c)).add_column(   # someone else's change
        "products", sa.Column("size", sa.Integer()), schema=t("shop")))
    refused = t.cli("apply", str(tmp_path / "plan.json"))
    assert refused.exit_code == 1
    assert refused.stderr.endswith(f"error: {STALE}\n")
    assert "weight" not in t.columns("shop", "products")


def test_saved_plan_applied_twice_is_a_no_op_the_second_time(t, tmp_path):
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    saved = t.plan("--out", str(tmp_path / "plan.json"))
    assert saved.exit_code == 2
    first = t.cli("apply", str(tmp_path / "plan.json"))
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[:2] == [f"+ create schema {t('shop')}",
                                             f"+ create table {t('shop')}.products (3 columns, key id)"]
    second = t.cli("apply", str(tmp_path / "plan.json"))
    assert (second.exit_code, second.stdout.strip()) == (0, "This plan has already been applied: nothing to do.")
    assert t.plan().exit_code == 0


def test_tables_kspyder_does_not_manage_are_never_touched(t):
    t.manifests({"shop": {"products": model(PRODUCTS)}, "old": {"a": model({"id": "integer"})}})
    assert t.apply().exit_code == 0

    def foreign_tables(c):
        for schema in (t("shop"), t("old")):
            table = sa.Table("theirs", sa.MetaData(), sa.Column("x", sa.Integer), schema=schema)
            table.create(c)
            c.execute(table.insert(), [{"x": 7}])
    t.run(foreign_tables)
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    pruned = t.plan("--prune")
    assert pruned.stdout.splitlines() == [f"- drop table {t('old')}.a",   # not the schema: it holds "theirs"
                                          "Plan: 0 to create, 0 to change, 0 to replace, 1 to drop."]
    assert t.apply("--prune").exit_code == 0
    assert t.tables("shop") == ["products", "theirs"] and t.tables("old") == ["theirs"]
    assert t.rows("old", "theirs") == [{"x": 7}]
    t.manifests({"shop": {"products": model(PRODUCTS), "theirs": model({"x": "integer"}, key=())}})
    clash = t.plan()
    assert clash.exit_code == 1
    assert f"{t('shop')}.theirs exists but is not a kspyder table" in clash.stderr


def test_apply_without_a_terminal_needs_auto_approve(t):
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    refused = t.cli("apply", "--scope", t.prefix + "*")
    assert refused.exit_code == 1
    assert "refusing to apply without confirmation: stdin is not a terminal (pass --auto-approve)" in refused.stderr
    assert t.tables("shop") == []


def test_apply_asks_on_a_terminal(t, monkeypatch):
    monkeypatch.setattr(schema_cmd, "stdin_is_terminal", lambda: True)
    t.manifests({"shop": {"products": model(PRODUCTS)}})
    declined = t.cli("apply", "--scope", t.prefix + "*", stdin="n\n")
    assert declined.exit_code == 1 and "Apply these changes? [y/N]" in declined.stdout
    assert t.tables("shop") == []
    accepted = t.cli("apply", "--scope", t.prefix + "*", stdin="y\n")
    assert accepted.exit_code == 0 and t.tables("shop") == ["products"]


def test_rendered_plan_for_a_representative_change_set(t):
    t.manifests({"shop": {"products": model(PRODUCTS), "legacy": model({"id": "integer"})}, "erp": {"orders": ORDERS}})
    assert t.apply().exit_code == 0
    t.manifests({
        "shop": {"customers": model({"id": "integer", "name": "string", "email": {"type": "string", "pii": "drop"},
                                     "city": "string"}),
                 "products": model({"id": "integer", "name": PRODUCTS["name"], "weight": "float"})},
        "erp": {"orders": model({**ORDERS["columns"], "amount": "text"}, key=("order_id", "line_no"))},
        "crm": {"contacts": model({"id": "integer", "tags": "json"}, key=())}})
    shop, erp, crm = t("shop"), t("erp"), t("crm")
    pruned = t.plan("--prune")
    assert pruned.exit_code == 2
    # the expected plan text kept whole, line for line as the command prints it
    assert pruned.stdout == f"""\
+ create schema {crm}
+ create table {shop}.customers (3 columns, key id)
+ create table {crm}.contacts (2 columns, no key)
~ add column {shop}.products.weight FLOAT
~ drop column {shop}.products.colour
-/+ replace table {erp}.orders (reason: type of amount changes DECIMAL(12,2) -> TEXT; primary key changes (order_id) -> (order_id, line_no))
- drop table {shop}.legacy
Plan: 3 to create, 2 to change, 1 to replace, 1 to drop. Re-extract after apply: {shop}.customers, {crm}.contacts, {erp}.orders
"""  # noqa: E501
    kept = t.plan()
    assert kept.stdout.splitlines()[-2:] == [
        f"{shop}.legacy is no longer in the manifests (kept; use --prune to drop it)",
        f"Plan: 3 to create, 2 to change, 1 to replace, 0 to drop. Re-extract after apply: {shop}.customers, "
        f"{crm}.contacts, {erp}.orders"]


@pytest.fixture
def pipeline_calls(monkeypatch):
    """Stands in for `shared.pipeline.run_models`: these tests are about the schema, not extraction."""
    calls: list[list[str]] = []

    def run_models(project, refs, *, run_id=None, wait=0.0):
        calls.append([r.qualified for r in refs])
        return SimpleNamespace(ok=True, render=lambda: f"ran {len(refs)} models")

    fake = types.ModuleType("shared.pipeline")
    fake.run_models = run_models
    monkeypatch.setitem(sys.modules, "shared.pipeline", fake)
    return calls


def test_apply_refill_runs_the_models_to_re_extract(t, pipeline_calls):
    t.manifests({"shop": {"products": model(PRODUCTS)}, "erp": {"orders": ORDERS}})
    assert t.apply().exit_code == 0
    t.manifests({"shop": {"products": model({**PRODUCTS, "weight": "float"})},
                 "erp": {"orders": model(ORDERS["columns"], key=("order_id", "line_no"))}})
    refilled = t.apply("--refill")
    assert refilled.exit_code == 0, refilled.output
    assert pipeline_calls == [[f"{t('erp')}.orders"]] and "ran 1 models" in refilled.stdout


def test_rebuild_drops_recreates_and_repopulates(t, pipeline_calls):
    t.manifests({"shop": {"products": model(PRODUCTS)}, "erp": {"orders": ORDERS}})
    assert t.apply().exit_code == 0
    t.insert("shop", "products", [{"id": 1, "name": "mug", "colour": "red", RUN_ID: "r1"}])
    t.insert("erp", "orders", [{"order_id": 1, "line_no": 1, "amount": 2, RUN_ID: "r1"}])
    refused = t.cli("rebuild", t("shop"))
    assert refused.exit_code == 1 and "pass --auto-approve" in refused.stderr
    rebuilt = t.cli("rebuild", t("shop"), "--auto-approve")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout.splitlines()[:3] == [f"- drop schema {t('shop')} (1 table: products)",
                                               f"+ create schema {t('shop')}",
                                               f"+ create table {t('shop')}.products (3 columns, key id)"]
    assert t.rows("shop", "products") == [] and len(t.rows("erp", "orders")) == 1
    assert pipeline_calls == [[f"{t('shop')}.products"]]
    assert t.plan().exit_code == 0


def test_a_failing_apply_rolls_back_where_ddl_is_transactional(t, monkeypatch, request):
    from shared.schema import apply as apply_module
    create = apply_module.STEPS["create_table"]
    calls = []

    def fail_second(connection, ops, metadata, change):
        calls.append(change.table)
        if len(calls) == 2:
            raise sa.exc.OperationalError("CREATE TABLE", {}, Exception("disk full"))
        create(connection, ops, metadata, change)

    monkeypatch.setitem(apply_module.STEPS, "create_table", fail_second)
    t.manifests({"shop": {"products": model(PRODUCTS), "orders": ORDERS}})
    failed = t.apply()
    assert failed.exit_code == 1 and failed.stderr.endswith("error: database: disk full\n")
    if "mariadb" in request.node.callspec.id:
        assert "commits each DDL statement on its own" in failed.stderr
        assert t.tables("shop") == ["products"]
    else:
        assert t.tables("shop") == []


# ---------------------------------------------------------------- one reflection pass per schema
def plan_queries(target: Target) -> tuple[int, tuple]:
    """(statements the plan of the target's project sent, its changes)."""
    project = load_project(target.tmp_path / "manifests", env={"KSPYDER_PII_KEY": TEST_KEY})
    engine = create_target_engine(target.url)
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    try:
        with engine.connect() as connection:
            plan = compute_plan(connection, project, PlanOptions(selectors=(target("shop"),)))
    finally:
        engine.dispose()
    return len(sent), plan.changes


def test_the_plan_of_five_tables_sends_the_queries_of_one(postgres_url, tmp_path):
    tag = uuid.uuid4().hex[:8]
    one, five = (Target(postgres_url, f"kt_reflect_{tag}_{n}_", tmp_path / str(n)) for n in (1, 5))
    for target, count in ((one, 1), (five, 5)):
        (target.tmp_path).mkdir()
        target.drop_all()
        target.manifests({"shop": {f"products_{i}": model(PRODUCTS) for i in range(count)}})
        assert target.apply().exit_code == 0
    try:
        (sent_one, changes_one), (sent_five, changes_five) = plan_queries(one), plan_queries(five)
        assert changes_one == changes_five == ()
        assert sent_five == sent_one
    finally:
        one.drop_all()
        five.drop_all()


def test_a_table_the_pass_did_not_cover_is_reflected_on_its_own(postgres_url, tmp_path):
    """The loader's drift check uses an inspector of its own: its table is reflected alone, the same."""
    target = Target(postgres_url, f"kt_reflect_{uuid.uuid4().hex[:8]}_", tmp_path)
    target.drop_all()
    target.manifests({"shop": {"products": model(PRODUCTS)}})
    assert target.apply().exit_code == 0
    project = load_project(tmp_path / "manifests", env={"KSPYDER_PII_KEY": TEST_KEY})
    [ref] = project.models()
    engine = create_target_engine(postgres_url)
    try:
        with engine.connect() as connection:
            alone = table_reflection(sa.inspect(connection), target("shop"), "products")
            diff = compare_table(sa.inspect(connection), target("shop"), "products", desired_columns(ref, "[REDACTED]"))
        assert [c["name"] for c in alone[0]][:3] == ["id", "name", "colour"] and alone[1] == ["id"]
        assert diff.matches
    finally:
        engine.dispose()
        target.drop_all()
