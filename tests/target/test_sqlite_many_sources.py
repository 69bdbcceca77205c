"""Any number of sources on the default SQLite target, past SQLite's 10 attached files: `plan`,
`apply`, `run` and a transformation reading several sources through the command line, each
source still in its own file (`target.<source>.db`) that a BI tool opens."""
from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli.main import cli
from shared.target.dialects import attaches_on_demand, create_target_engine
from shared.target.sqlite_attach import AttachLimit
from tests.helpers.flow import TEST_KEY

SOURCES = 12
ROWS = 5


def _invoke(folder: Path, *args: str):
    return CliRunner().invoke(cli, ["--manifests", str(folder), *args], env={"KSPYDER_PII_KEY": TEST_KEY},
                              catch_exceptions=False)


@pytest.fixture()
def project_folder(tmp_path: Path) -> Path:
    source = tmp_path / "source.db"
    with closing(sqlite3.connect(source)) as connection, connection:
        connection.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER)")
        connection.executemany("INSERT INTO items VALUES (?, ?)", [(i, i * 10) for i in range(1, ROWS + 1)])
    folder = tmp_path / "manifests"
    folder.mkdir()
    columns = {"id": {"type": "integer"}, "qty": {"type": "integer"}}
    model = {"table": "items", "primary_key": ["id"], "columns": columns}
    sources = {f"src{i:02d}": {"type": "sql", "url": f"sqlite:///{source}", "models": {"items": model}}
               for i in range(SOURCES)}
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": sources}))
    (folder / "settings.yml").write_text(yaml.safe_dump({"target_url": f"sqlite:///{tmp_path / 'target.db'}",
                                                         "state_dir": str(tmp_path / "state")}))
    (folder / "transformations.yml").write_text(yaml.safe_dump({"pipelines": {"both": {
        "inputs": {"a": "src00.items", "b": "src11.items"},
        "steps": [{"join": {"left": "a", "right": "b", "on": "id"}},
                  {"derive": {"total": "qty + qty_b"}}],
        "output": "marts.both"}}}))
    return folder


def test_twelve_sources_plan_apply_run_and_transform(project_folder: Path, tmp_path: Path) -> None:
    planned = _invoke(project_folder, "plan")
    assert planned.exit_code == 2, planned.stderr   # changes to make
    applied = _invoke(project_folder, "apply", "--auto-approve")
    assert applied.exit_code == 0, applied.stderr
    ran = _invoke(project_folder, "run")
    assert ran.exit_code == 0, ran.stderr
    transformed = _invoke(project_folder, "transform")
    assert transformed.exit_code == 0, transformed.stderr
    for i in range(SOURCES):   # each source in its own file, as a BI tool opens it
        with closing(sqlite3.connect(tmp_path / f"target.src{i:02d}.db")) as connection:
            assert connection.execute("SELECT count(*), sum(qty) FROM items").fetchone() == (ROWS, 150)
    with closing(sqlite3.connect(tmp_path / "target.marts.db")) as connection:
        assert connection.execute("SELECT sum(total) FROM both").fetchone() == (300,)
    again = _invoke(project_folder, "plan")
    assert again.exit_code == 0, again.stdout + again.stderr   # nothing left to change


def test_reads_past_the_limit_in_one_transaction_writes_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    names = [f"s{i:02d}" for i in range(SOURCES)]
    engine = create_target_engine(url, names)
    try:
        assert attaches_on_demand(engine)
        for name in names:   # one transaction per schema: any number of them
            with engine.begin() as connection:
                connection.exec_driver_sql(f"CREATE TABLE {name}.t (x INTEGER)")
                connection.exec_driver_sql(f"INSERT INTO {name}.t VALUES (1)")
        with engine.connect() as connection:   # reads of every schema in one transaction
            assert sum(connection.exec_driver_sql(f"SELECT x FROM {n}.t").scalar() for n in names) == SOURCES
            listed = {row[1] for row in connection.exec_driver_sql("PRAGMA database_list")}
            assert set(names) <= listed   # the inspector sees every schema, attached or not
            assert sa.inspect(connection).get_table_names(schema="s11") == ["t"]
        with pytest.raises(sa.exc.OperationalError, match="uses at most 10 schemas at once"):
            with engine.begin() as connection:   # a write, then more schemas than attach at once
                for name in names:
                    connection.exec_driver_sql(f"INSERT INTO {name}.t VALUES (2)")
        with engine.connect() as connection:   # rolled back whole
            assert sum(connection.exec_driver_sql(f"SELECT count(*) FROM {n}.t").scalar() for n in names) == SOURCES
    finally:
        engine.dispose()
    assert issubclass(AttachLimit, sqlite3.OperationalError)
    for name in names:   # attached inside a transaction, switched to WAL at a later one: BI tools read during loads
        with closing(sqlite3.connect(tmp_path / f"target.{name}.db")) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_up_to_the_limit_every_schema_is_attached_on_connect(tmp_path: Path) -> None:
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}", [f"s{i}" for i in range(10)])
    try:
        assert not attaches_on_demand(engine)
        with engine.connect() as connection:
            attached = {row[1] for row in connection.connection.dbapi_connection.execute("PRAGMA database_list")}
        assert attached == {"main", *(f"s{i}" for i in range(10))}
    finally:
        engine.dispose()
