"""`replace_table`: a DataFrame becomes a whole table, on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from shared.config.models import ColumnType
from shared.load.replace import ReplaceError, frame_columns, replace_table
from shared.target.columns import LOADED_AT, RUN_ID
from shared.target.compare import compare_table
from shared.target.dialects import create_target_engine, drop_schema


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def target(request, tmp_path):
    schema = f"kt_repl_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'target.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
    engine = create_target_engine(url, schemas=[schema])
    yield engine, schema
    with engine.begin() as connection:
        drop_schema(connection, schema)
    engine.dispose()


def sample() -> pd.DataFrame:
    return pd.DataFrame({
        "id": pd.Series([1, 2, 3], dtype="int64"),
        "maybe": pd.Series([1, None, 3], dtype="Int64"),
        "price": [1.5, float("nan"), 3.25],
        "flag": pd.Series([True, None, False], dtype="boolean"),
        "at": pd.to_datetime(["2024-01-02 03:04:05", None, "2024-03-01 00:00:00"]).tz_localize("UTC"),
        "name": pd.Series(["a", None, "ü"], dtype="str"),
        "doc": [{"k": 1}, None, 7],
    })


def rows(engine, schema, table):
    with engine.connect() as connection:
        t = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=connection)
        return [dict(r._mapping) for r in connection.execute(sa.select(t).order_by(t.c.id))]


def test_replace_creates_fills_and_replaces(target):
    engine, schema = target
    assert replace_table(engine, schema, "out", sample(), run_id="run-1") == 3
    got = rows(engine, schema, "out")
    assert [r["id"] for r in got] == [1, 2, 3]
    assert [r["maybe"] for r in got] == [1, None, 3]
    assert [r["price"] for r in got] == [1.5, None, 3.25]
    assert [None if r["flag"] is None else bool(r["flag"]) for r in got] == [True, None, False]
    first = got[0]["at"]
    assert first.replace(tzinfo=None) == datetime(2024, 1, 2, 3, 4, 5)
    assert got[1]["at"] is None
    assert [r["name"] for r in got] == ["a", None, "ü"]
    assert [r["doc"] for r in got] == ['{"k": 1}', None, "7"]
    assert {r[RUN_ID] for r in got} == {"run-1"}
    assert all(r[LOADED_AT] is not None for r in got)

    # replaced with another shape: old columns and rows are gone
    assert replace_table(engine, schema, "out", pd.DataFrame({"id": [9], "other": ["x"]})) == 1
    got = rows(engine, schema, "out")
    assert [(r["id"], r["other"]) for r in got] == [(9, "x")]
    assert "price" not in got[0]


def test_replaced_table_matches_the_columns_plan_compares(target):
    engine, schema = target
    frame = sample()
    replace_table(engine, schema, "shape", frame)
    diff = compare_table(sa.inspect(engine), schema, "shape", frame_columns(frame))
    assert diff.matches, diff


def test_empty_frame_still_makes_the_table(target):
    engine, schema = target
    frame = pd.DataFrame({"id": pd.Series([], dtype="int64"), "name": pd.Series([], dtype="str")})
    assert replace_table(engine, schema, "empty", frame) == 0
    assert sa.inspect(engine).has_table("empty", schema=schema)
    assert rows(engine, schema, "empty") == []


def test_failed_insert_keeps_the_old_table(target, monkeypatch):
    engine, schema = target
    replace_table(engine, schema, "keep", pd.DataFrame({"id": [1, 2]}))
    import shared.load.replace as module

    def failing_insert(connection, table, batch):
        connection.execute(sa.text("SELECT * FROM no_such_table_kspyder"))
    monkeypatch.setattr(module, "_insert", failing_insert)
    with pytest.raises(ReplaceError, match=rf"^{schema}.keep: replacing the table failed: "):
        replace_table(engine, schema, "keep", pd.DataFrame({"id": [7]}))
    assert [r["id"] for r in rows(engine, schema, "keep")] == [1, 2]
    assert sorted(sa.inspect(engine).get_table_names(schema=schema)) == ["keep"]   # no staging table left


def test_identifiers_are_checked():
    engine = sa.create_engine("sqlite://")
    with pytest.raises(ReplaceError, match="schema 'bad-name' must use only letters"):
        replace_table(engine, "bad-name", "t", pd.DataFrame({"a": [1]}))
    with pytest.raises(ReplaceError, match="table 't; drop' must use only letters"):
        replace_table(engine, "s", "t; drop", pd.DataFrame({"a": [1]}))
    with pytest.raises(ReplaceError, match=r"^s.t: column 'a b' must use only letters.*; column 0 is not a name"):
        replace_table(engine, "s", "t", pd.DataFrame({"a b": [1], 0: [2]}))


def test_unattached_sqlite_schema_is_a_clear_error(tmp_path):
    engine = create_target_engine(f"sqlite:///{tmp_path / 't.db'}")
    with pytest.raises(ReplaceError, match="schema analytics is not attached"):
        replace_table(engine, "analytics", "t", pd.DataFrame({"a": [1]}))


def test_dtype_mapping():
    frame = pd.DataFrame({"i": [1], "f": [1.0], "b": [True], "s": ["x"], "o": [object()],
                          "d": pd.to_datetime(["2024-01-01"]), "n": pd.Series([1], dtype="Int32"),
                          RUN_ID: ["from the input"]})
    kinds = {c.name: c.type for c in frame_columns(frame)}
    assert kinds == {"i": ColumnType.bigint, "f": ColumnType.float, "b": ColumnType.boolean, "s": ColumnType.text,
                     "o": ColumnType.text, "d": ColumnType.datetime, "n": ColumnType.bigint,
                     RUN_ID: ColumnType.string, LOADED_AT: ColumnType.datetime}
    with pytest.raises(ReplaceError, match="column t: dtype timedelta64"):
        frame_columns(pd.DataFrame({"t": pd.to_timedelta([1], unit="s")}))


def test_naive_datetimes_are_taken_as_utc(target):
    engine, schema = target
    frame = pd.DataFrame({"id": [1], "at": pd.to_datetime(["2024-05-06 07:08:09"])})
    replace_table(engine, schema, "naive", frame)
    [row] = rows(engine, schema, "naive")
    at = row["at"]
    expected = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    assert (at if at.tzinfo else at.replace(tzinfo=UTC)) == expected


def test_rows_go_in_batches(target, monkeypatch):
    engine, schema = target
    import shared.load.replace as module
    monkeypatch.setattr(module, "INSERT_BATCH", 2)
    frame = pd.DataFrame({"id": range(5), "v": [f"v{i}" for i in range(5)]})
    assert replace_table(engine, schema, "batched", frame) == 5
    assert [(r["id"], r["v"]) for r in rows(engine, schema, "batched")] == [(i, f"v{i}") for i in range(5)]
