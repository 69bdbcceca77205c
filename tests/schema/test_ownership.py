"""Projects isolated on a shared server: `apply` marks each schema with its project's id, and
`plan`, `apply --prune` and `rebuild` of one project never list, change or drop another's, on
PostgreSQL and MariaDB (where a server lists every database whatever the URL names) and SQLite.
No `--scope` anywhere here: the marks alone must keep the projects apart."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import azure.functions as func
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from functions import common
from functions.schema_routes import schema_apply, schema_plan
from shared.target.columns import LOADED_AT, RUN_ID
from shared.target.dialects import create_target_engine, drop_schema
from shared.target.meta_table import TABLE, meta_table
from tests.helpers.flow import TEST_KEY, project_for


class Project:
    """A manifests folder over SQLite sources made to match, one table `items(id)` per model."""

    def __init__(self, root: Path, target: str, project: str | None = None):
        self.root, self.target, self.project = root, target, project
        root.mkdir(parents=True, exist_ok=True)

    def manifests(self, *sources: str) -> None:
        engine = sa.create_engine(f"sqlite:///{self.root / 'source.db'}")
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY)"))
        engine.dispose()
        settings = {"target_url": self.target, "state_dir": str(self.root / "state")}
        if self.project:
            settings["project"] = self.project
        project_for(self.root, {name: {"type": "sql", "url": f"sqlite:///{self.root / 'source.db'}", "models": {
            "items": {"table": "items", "primary_key": ["id"], "columns": {"id": {"type": "integer"}}}}}
            for name in sources}, settings)

    def __call__(self, *args: str):
        return CliRunner().invoke(cli, ["--manifests", str(self.root / "manifests"), *args],
                                  env={"KSPYDER_PII_KEY": TEST_KEY}, catch_exceptions=False)


def run_on(url: str, work):
    engine = create_target_engine(url)
    try:
        with engine.begin() as connection:
            return work(connection)
    finally:
        engine.dispose()


def schemas(url: str, prefix: str) -> list[str]:
    return run_on(url, lambda c: sorted(s for s in sa.inspect(c).get_schema_names() if s.startswith(prefix)
                                        and sa.inspect(c).get_table_names(schema=s)))


def owner(url: str, schema: str) -> str | None:
    table = meta_table(schema)
    return run_on(url, lambda c: c.execute(sa.select(table.c.value).where(table.c.name == "project")).scalar())


def drop_prefixed(url: str, prefix: str) -> None:
    def drop(connection):
        for schema in sa.inspect(connection).get_schema_names():
            if schema.startswith(prefix):
                drop_schema(connection, schema)
    run_on(url, drop)


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request):
    """(target URL, a prefix of this test's schema names); the schemas are dropped after."""
    url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
    prefix = "kt_own_" + uuid.uuid4().hex[:8] + "_"
    yield url, prefix
    drop_prefixed(url, prefix)


def test_two_projects_on_one_server_never_touch_each_other(tmp_path, server):
    url, prefix = server
    a = Project(tmp_path / "a", url, "proj-a-" + prefix)
    b = Project(tmp_path / "b", url, "proj-b-" + prefix)
    a.manifests(prefix + "a_shop", prefix + "a_old")
    b.manifests(prefix + "b_crm")
    for project in (a, b):
        applied = project("apply", "--auto-approve")
        assert applied.exit_code == 0, applied.output
    assert owner(url, prefix + "a_shop") == "proj-a-" + prefix and owner(url, prefix + "b_crm") == "proj-b-" + prefix
    crm = sa.Table("items", sa.MetaData(), sa.Column("id", sa.Integer), sa.Column(RUN_ID, sa.String(36)),
                   sa.Column(LOADED_AT, sa.DateTime), schema=prefix + "b_crm")
    run_on(url, lambda c: c.execute(crm.insert(), [{"id": 7, RUN_ID: "b-run", LOADED_AT: datetime.now(UTC)}]))

    a.manifests(prefix + "a_shop")                                  # project A removes a source
    pruned = a("plan", "--prune")
    assert pruned.exit_code == 2, pruned.output
    assert f"- drop schema {prefix}a_old (1 table: items)" in pruned.stdout
    assert "b_crm" not in pruned.output
    kept = b("plan", "--prune")
    assert kept.exit_code == 0 and "a_old" not in kept.output and "a_shop" not in kept.output

    rebuilt = a("rebuild", "--auto-approve")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "b_crm" not in rebuilt.output
    pruned = a("apply", "--prune", "--auto-approve")
    assert pruned.exit_code == 0, pruned.output
    assert schemas(url, prefix) == [prefix + "a_shop", prefix + "b_crm"]
    assert run_on(url, lambda c: c.execute(sa.select(crm.c.id)).scalars().all()) == [7]   # B's rows untouched
    assert owner(url, prefix + "a_shop") == "proj-a-" + prefix                             # marked again by rebuild


def test_another_projects_schema_is_refused_not_shared(tmp_path, server):
    url, prefix = server
    a = Project(tmp_path / "a", url, "proj-a-" + prefix)
    b = Project(tmp_path / "b", url, "proj-b-" + prefix)
    a.manifests(prefix + "shop")
    b.manifests(prefix + "shop")                                    # the same source name in both
    assert a("apply", "--auto-approve").exit_code == 0
    for command in (("plan",), ("apply", "--auto-approve"), ("rebuild", "--auto-approve")):
        refused = b(*command)
        assert refused.exit_code == 1
        assert (f"error: schema {prefix}shop belongs to another kspyder project (proj-a-{prefix}), not project "
                f"proj-b-{prefix}: kspyder never touches it") in refused.stderr
    assert schemas(url, prefix) == [prefix + "shop"] and owner(url, prefix + "shop") == "proj-a-" + prefix


def test_without_a_project_key_each_url_database_is_a_project(tmp_path, mariadb_url):
    """MariaDB: two projects whose URLs name different databases, no `project:`: the first apply of
    each stores a generated id in its own database's `_kspyder`."""
    prefix = "kt_own_" + uuid.uuid4().hex[:8] + "_"
    url = sa.engine.make_url(mariadb_url)
    homes = {name: url.set(database=prefix + "home_" + name).render_as_string(hide_password=False) for name in "ab"}
    run_on(mariadb_url, lambda c: [c.execute(sa.schema.CreateSchema(prefix + "home_" + name)) for name in "ab"])
    try:
        a, b = Project(tmp_path / "a", homes["a"]), Project(tmp_path / "b", homes["b"])
        a.manifests(prefix + "a_shop", prefix + "a_old")
        b.manifests(prefix + "b_crm")
        assert a("apply", "--auto-approve").exit_code == 0 and b("apply", "--auto-approve").exit_code == 0
        home = meta_table()   # the URL database's own
        ids = {name: run_on(homes[name], lambda c: c.execute(sa.select(home.c.value).where(
            home.c.name == "project_id")).scalar()) for name in "ab"}
        assert ids["a"] and ids["b"] and ids["a"] != ids["b"]
        assert owner(mariadb_url, prefix + "a_shop") == ids["a"] and owner(mariadb_url, prefix + "b_crm") == ids["b"]
        a.manifests(prefix + "a_shop")
        pruned = a("plan", "--prune")
        assert f"- drop schema {prefix}a_old" in pruned.stdout and "b_crm" not in pruned.output
        assert "a_old" not in b("plan", "--prune").output
    finally:
        drop_prefixed(mariadb_url, prefix)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.db'}", "kt_own_"
        return
    url, prefix = request.getfixturevalue("postgres_url"), "kt_own_" + uuid.uuid4().hex[:8] + "_"
    yield url, prefix
    drop_prefixed(url, prefix)


def test_schemas_made_before_marks_are_adopted_or_left_alone(tmp_path, target):
    url, prefix = target
    project = Project(tmp_path / "p", url, "proj-" + prefix)
    project.manifests(prefix + "shop", prefix + "old")
    first = project("apply", "--auto-approve")
    assert first.exit_code == 0, first.output
    for schema in (prefix + "shop", prefix + "old"):                # as a version without marks left them
        run_on(url, lambda c, s=schema: meta_table(s).drop(c))
    project.manifests(prefix + "shop")                              # "old" was removed meanwhile

    adopt = project("plan", "--prune")
    assert adopt.exit_code == 2
    assert adopt.stdout.splitlines() == [f"~ claim schema {prefix}shop (made before project marks: marked as this "
                                         "project's)", "Plan: 0 to create, 1 to change, 0 to replace, 0 to drop."]
    assert "old" not in adopt.output                                # unmarked: never listed, never pruned
    adopted = project("apply", "--prune", "--auto-approve")
    assert adopted.exit_code == 0, adopted.output
    assert owner(url, prefix + "shop") == "proj-" + prefix
    again = project("plan", "--prune")
    assert again.exit_code == 0 and again.stdout.strip() == "No changes. The target matches the manifests."
    assert schemas(url, prefix) == [prefix + "old", prefix + "shop"]


def test_schema_routes_mark_what_they_create(tmp_path, monkeypatch):
    """The queue chain's deployment applies through POST /api/schema/apply: the same marks."""
    project = Project(tmp_path, f"sqlite:///{tmp_path / 'target.db'}", "chain-project")
    project.manifests("shop")
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    try:
        plan = json.loads(schema_plan(func.HttpRequest("GET", "http://localhost/api/schema/plan", body=b"")).get_body())
        applied = schema_apply(func.HttpRequest("POST", "http://localhost/api/schema/apply",
                                                body=json.dumps({"plan_hash": plan["plan_hash"]}).encode()))
        assert applied.status_code == 200, applied.get_body()
    finally:
        common.dispose_engines()
    url = f"sqlite:///{tmp_path / 'target.db'}"
    assert owner(url, "shop") == "chain-project"
    assert TABLE in run_on(url, lambda c: sa.inspect(c).get_table_names(schema="shop"))
    assert project("plan").stdout.strip() == "No changes. The target matches the manifests."
