"""Loading into SQLite, PostgreSQL and MariaDB: idempotent upserts, interrupted loads, replace-per-run,
drift, and values that must round-trip or be refused with a clear message.

Each test builds its table as `plan` would (`model_table` after `create_schema`) in a dedicated
`kt_load_*` schema, dropped at teardown. The server cases use conftest's `postgres_url` /
`mariadb_url`: they skip when the server is down, except where services are promised (CI).
"""
from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared.config.project import ModelRef
from shared.load.loader import Loader, LoadError, TargetDriftError
from shared.target.columns import LOADED_AT, META_COLUMNS, RUN_ID
from shared.target.dialects import create_schema, create_target_engine, drop_schema
from shared.target.tables import model_table
from tests.helpers.load import COLUMNS, REDACTION, model_ref, record


class Target:
    """One database for a test: schemas created on demand, all dropped at teardown."""

    def __init__(self, url: str):
        self.url = url
        self.engines: list[sa.Engine] = []
        self.schemas: list[str] = []

    def schema(self, tag: str) -> str:
        name = f"kt_load_{tag}_{os.getpid()}"
        self.schemas.append(name)
        return name

    def engine(self, *schemas: str) -> sa.Engine:
        engine = create_target_engine(self.url, schemas)
        self.engines.append(engine)
        return engine

    def create(self, ref: ModelRef, constraint: sa.Constraint | None = None) -> sa.Engine:
        """The model's table, fresh, as `plan`/`apply` would create it."""
        engine = self.engine(ref.source_name)
        _drop(engine, ref.source_name)
        with engine.begin() as connection:
            create_schema(connection, ref.source_name)
            metadata = sa.MetaData()
            table = model_table(metadata, ref, REDACTION, engine.dialect.name)
            if constraint is not None:
                table.append_constraint(constraint)
            metadata.create_all(connection)
        return engine

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()
        engine = create_target_engine(self.url, self.schemas)
        for schema in set(self.schemas):
            _drop(engine, schema)
        engine.dispose()


def _drop(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite" or schema in sa.inspect(connection).get_schema_names():
            drop_schema(connection, schema)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def target(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/target.db"
    else:  # conftest: skips, or fails where services are promised
        url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
    target = Target(url)
    yield target
    target.close()


# ---------------------------------------------------------------- records and reference
def pages_of(ids: list[int], size: int, version: int = 1) -> list[list[dict]]:
    return [[record(i, version) for i in ids[start:start + size]] for start in range(0, len(ids), size)]


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normal(row: dict[str, Any], ref: ModelRef) -> dict[str, Any]:
    """A record as the table should hold it: every column (missing -> None), datetimes in UTC."""
    out = {}
    for name, column in ref.model.columns.items():
        value = row.get(name)
        out[name] = utc(value) if column.type.value == "datetime" else value
    return out


def key_of(ref: ModelRef, row: dict[str, Any]) -> tuple:
    return tuple(row[k] for k in ref.model.primary_key)


def reference(ref: ModelRef, loads: list[list[dict]]) -> dict[tuple, dict]:
    """What loading these pages in this order must leave: the last record of each key."""
    expected: dict[tuple, dict] = {}
    for page in loads:
        for rec in page:
            expected[key_of(ref, rec)] = normal(rec, ref)
    return expected


def stored(engine: sa.Engine, ref: ModelRef, meta: bool = False) -> dict[tuple, dict]:
    table = model_table(sa.MetaData(), ref, REDACTION, engine.dialect.name)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table)).mappings().all()
    out = {}
    for row in rows:
        values = normal(dict(row), ref)
        if meta:
            values.update({RUN_ID: row[RUN_ID], LOADED_AT: utc(row[LOADED_AT])})
        out[key_of(ref, values)] = values
    assert len(out) == len(rows)
    return out


def load_all(engine: sa.Engine, ref: ModelRef, pages: list[list[dict]], run_id: str = "run-1",
             batch_size: int = 50) -> Loader:
    loader = Loader(engine, ref, redaction=REDACTION, run_id=run_id, batch_size=batch_size)
    loader.check_drift()
    for page in pages:
        loader.load(page)
    loader.finish()
    return loader


# ---------------------------------------------------------------- idempotent upserts
def test_pages_load_like_the_reference(target: Target) -> None:
    ref = model_ref(target.schema("pages"))
    engine = target.create(ref)
    pages = pages_of(list(range(1, 601)), 120)
    loader = Loader(engine, ref, redaction=REDACTION, run_id="run-1", batch_size=50)
    loader.check_drift()
    assert [loader.load(page) for page in pages] == [120] * 5
    loader.finish()
    assert (loader.stats.rows, loader.stats.batches) == (600, 5 * 3)
    assert stored(engine, ref) == reference(ref, pages)
    before = datetime.now(UTC) - timedelta(minutes=1)
    assert {(r[RUN_ID], r[LOADED_AT] > before) for r in stored(engine, ref, meta=True).values()} == {("run-1", True)}


def test_reloads_and_shuffled_pages_converge(target: Target) -> None:
    ref = model_ref(target.schema("reload"))
    engine = target.create(ref)
    ids = list(range(1, 401))
    pages = pages_of(ids, 80)
    updates = [record(i, version=2) for i in ids[::9]] + [record(5, version=3)]   # key 5 twice: the last wins
    loads = pages + pages + [updates]
    rng = random.Random(11)
    shuffled = pages + [updates]
    rng.shuffle(shuffled)
    loads += shuffled
    load_all(engine, ref, loads, batch_size=37)
    assert stored(engine, ref) == reference(ref, loads)
    assert stored(engine, ref)[(5,)]["name"].startswith("item 5 v3")


def test_update_refreshes_run_id_and_loaded_at(target: Target) -> None:
    ref = model_ref(target.schema("meta"))
    engine = target.create(ref)
    load_all(engine, ref, [[record(i) for i in range(1, 11)]], run_id="run-1")
    first = stored(engine, ref, meta=True)
    load_all(engine, ref, [[record(i, version=2) for i in (2, 3)]], run_id="run-2")
    second = stored(engine, ref, meta=True)
    assert {k for k, r in second.items() if r[RUN_ID] == "run-2"} == {(2,), (3,)}
    assert second[(2,)][LOADED_AT] > first[(2,)][LOADED_AT]
    assert second[(4,)] == first[(4,)]


def test_composite_key(target: Target) -> None:
    columns = {"region": {"type": "string", "length": 8}, "id": {"type": "integer"}, "qty": {"type": "bigint"}}
    ref = model_ref(target.schema("composite"), columns, key=("region", "id"))
    engine = target.create(ref)
    first = [{"region": region, "id": i, "qty": i * 10} for region in ("eu", "us") for i in range(1, 51)]
    later = [{"region": "us", "id": i, "qty": -i} for i in range(40, 61)]
    load_all(engine, ref, [first, later, first[:10]], batch_size=30)
    expected = reference(ref, [first, later, first[:10]])
    assert len(expected) == 110
    assert stored(engine, ref) == expected


# ---------------------------------------------------------------- interrupted loads
def test_failure_after_first_batch_then_rerun(target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = model_ref(target.schema("interrupt"))
    engine = target.create(ref)
    pages = pages_of(list(range(1, 201)), 100)
    loader = Loader(engine, ref, redaction=REDACTION, run_id="run-1", batch_size=60)
    write = loader._writer.write
    calls = []

    def flaky(connection: sa.Connection, rows: list[tuple]) -> None:
        calls.append(len(rows))
        write(connection, rows)   # the batch is written, then the connection "drops" before commit
        if len(calls) == 2:
            raise ConnectionError("connection lost")

    monkeypatch.setattr(loader._writer, "write", flaky)
    with pytest.raises(ConnectionError):
        loader.load(pages[0])
    assert set(stored(engine, ref)) == {(i,) for i in range(1, 61)}   # batch 1 committed, batch 2 rolled back
    load_all(engine, ref, pages)   # the whole run again
    assert stored(engine, ref) == reference(ref, pages)


def test_record_that_does_not_fit_stops_its_batch_then_rerun(target: Target) -> None:
    ref = model_ref(target.schema("misfit"))
    engine = target.create(ref)
    pages = pages_of(list(range(1, 201)), 100)
    broken = [dict(r) for r in pages[0]]
    broken[75]["name"] = "x" * 41    # in the middle of the second batch (50-99)
    loader = Loader(engine, ref, redaction=REDACTION, run_id="run-1", batch_size=50)
    with pytest.raises(LoadError) as caught:
        loader.load(broken)
    assert str(caught.value) == (f"{ref.qualified}: record #75 of the page, column 'name': value longer than 40 "
                                 "characters (set on_error: null on the column to load NULL instead)")
    assert set(stored(engine, ref)) == {(i,) for i in range(1, 51)}
    load_all(engine, ref, pages)
    assert stored(engine, ref) == reference(ref, pages)


def test_database_error_rolls_its_batch_back_without_values(target: Target) -> None:
    ref = model_ref(target.schema("dberror"))
    engine = target.create(ref, sa.CheckConstraint("score < 100000", name="kt_score_limit"))
    page = [record(i) | {"score": 1.5} for i in range(1, 101)]
    page[70]["score"] = 123456.75
    loader = Loader(engine, ref, redaction=REDACTION, run_id="run-1", batch_size=50)
    with pytest.raises(LoadError) as caught:
        loader.load(page)
    message = str(caught.value)
    assert message.startswith(f"{ref.qualified}: batch of records 50-99 of the page failed and was rolled back: ")
    assert "123456" not in message and "[SQL" not in message and "parameters" not in message.lower()
    assert "\n" not in message and len(message) < 400
    assert set(stored(engine, ref)) == {(i,) for i in range(1, 51)}
    page[70]["score"] = 2.0
    load_all(engine, ref, [page])
    assert stored(engine, ref) == reference(ref, [page])


# ---------------------------------------------------------------- models without key
def test_model_without_key_is_replaced_per_run(target: Target) -> None:
    columns = {"event": {"type": "string", "length": 20}, "at": {"type": "datetime"}, "data": {"type": "json"}}
    ref = model_ref(target.schema("keyless"), columns, key=())
    engine = target.create(ref)
    at = datetime(2024, 5, 1, 12, tzinfo=UTC)
    run1 = [{"event": f"a{i}", "at": at, "data": {"i": i}} for i in range(30)]
    run2 = [{"event": f"b{i}", "at": at, "data": None} for i in range(20)]
    load_all(engine, ref, [run1], run_id="run-1", batch_size=7)
    loader = Loader(engine, ref, redaction=REDACTION, run_id="run-2", batch_size=7)
    loader.load(run2[:10])
    loader.load(run2[10:])
    assert _count(engine, ref) == 30      # the previous run alone, until this one succeeds
    loader.finish()
    assert loader.stats.deleted == 30
    table = model_table(sa.MetaData(), ref, REDACTION, engine.dialect.name)
    with engine.connect() as connection:
        rows = connection.execute(sa.select(table.c.event, table.c.data, table.c[RUN_ID])).all()
        nulls = connection.execute(sa.select(sa.func.count()).where(table.c.data.is_(None))).scalar()
    assert sorted(rows) == sorted((r["event"], None, "run-2") for r in run2)
    assert nulls == 20    # SQL NULL, not the JSON text 'null'


def _count(engine: sa.Engine, ref: ModelRef) -> int:
    table = model_table(sa.MetaData(), ref, REDACTION, engine.dialect.name)
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()


# ---------------------------------------------------------------- drift
def test_drift_is_refused_with_plan_hint(target: Target) -> None:
    schema = target.schema("drift")
    engine = target.create(model_ref(schema, COLUMNS | {"amount": {"type": "text"}}))
    loader = Loader(engine, model_ref(schema), redaction=REDACTION, run_id="run-1")
    with pytest.raises(TargetDriftError) as caught:
        loader.check_drift()
    message = str(caught.value)
    assert message.startswith(f"table {schema}.items does not match the manifest (type of amount changes TEXT -> "
                              "DECIMAL(12,2)")
    assert message.endswith("run `main.py plan`")
    with pytest.raises(TargetDriftError):
        loader.load([record(1)])   # load checks too, when the caller did not


def test_missing_table_is_refused_with_plan_hint(target: Target) -> None:
    schema = target.schema("missing")
    target.create(model_ref(schema, name="other"))
    loader = Loader(target.engine(schema), model_ref(schema), redaction=REDACTION, run_id="run-1")
    with pytest.raises(TargetDriftError, match=rf"^table {schema}\.items does not exist: run `main\.py plan`$"):
        loader.check_drift()


# ---------------------------------------------------------------- values
VALUES_COLUMNS = COLUMNS | {"small": {"type": "integer"}, "big": {"type": "bigint"}}


def test_values_round_trip(target: Target) -> None:
    ref = model_ref(target.schema("values"), VALUES_COLUMNS)
    engine = target.create(ref)
    plus_five = timezone(timedelta(hours=5, minutes=30))
    nasty = [
        {"id": 1, "name": "'\"; DROP TABLE x;--", "note": "Robert'); DROP TABLE students;-- \\' \\\" %s %(x)s ?",
         "tags": {"q": "'\"; DROP TABLE x;--", "k'ey": ["\\", "\n"]}},
        {"id": 2, "name": "emoji 🚀👩‍💻 CJK 漢字かな RTL مرحبا עברית", "note": "🎉" * 1000 + "中" * 1000,
         "tags": {"emoji": "🚀", "日本": ["שלום"]}},
        {"id": 3, "note": "long " + "x" * 100_000, "tags": ["a" * 5000, 1, 2.5, False, None]},
        {"id": 4, "amount": Decimal("9999999999.99"), "small": 2**31 - 1, "big": 2**63 - 1, "score": 1.0e300},
        {"id": 5, "amount": Decimal("-9999999999.99"), "small": -2**31, "big": -2**63, "score": -2.5e-300},
        {"id": 6, "amount": Decimal("0.01"), "score": 0.1, "active": False, "born": date(1900, 1, 1)},
        {"id": 7, "amount": Decimal("1.500"), "active": True, "born": date(9999, 12, 31)},
        {"id": 8, "updated": datetime(2024, 3, 31, 1, 30, 15, 123456), "name": "naive, taken as UTC"},
        {"id": 9, "updated": datetime(2024, 3, 31, 7, 0, 0, 1, tzinfo=plus_five)},
        {"id": 10, "updated": datetime(1970, 1, 1, tzinfo=timezone(timedelta(hours=-8)))},
        {"id": 11, "tags": "just text", "name": ""},
        {"id": 12, "tags": 42},
    ]
    load_all(engine, ref, [nasty])
    got = stored(engine, ref)
    expected = reference(ref, [nasty])
    assert got[(8,)]["updated"] == datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=UTC)
    assert got[(9,)]["updated"] == datetime(2024, 3, 31, 1, 30, 0, 1, tzinfo=UTC)
    assert len(got[(3,)]["note"]) == 100_005
    assert got == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_float_is_refused_or_nulled(target: Target, value: float) -> None:
    ref = model_ref(target.schema("nan"))
    engine = target.create(ref)
    loader = Loader(engine, ref, redaction=REDACTION, run_id="run-1")
    with pytest.raises(LoadError, match=r"record #1 of the page, column 'score': not a finite number"):
        loader.load([record(1), record(2) | {"score": value}])
    assert stored(engine, ref) == {}

    lenient = model_ref(ref.source_name, COLUMNS | {"score": {"type": "float", "on_error": "null"}})
    loader = Loader(engine, lenient, redaction=REDACTION, run_id="run-1")
    assert loader.load([record(1), record(2) | {"score": value}]) == 2
    assert loader.stats.nulled == 1
    assert stored(engine, ref)[(2,)]["score"] is None


def test_too_long_string_is_refused_or_nulled(target: Target) -> None:
    ref = model_ref(target.schema("long"))
    engine = target.create(ref)
    secret = "s3cr3t-" + "y" * 40
    with pytest.raises(LoadError) as caught:
        Loader(engine, ref, redaction=REDACTION, run_id="run-1").load([record(1) | {"name": secret}])
    assert "record #0 of the page, column 'name': value longer than 40 characters" in str(caught.value)
    assert secret not in str(caught.value) and "s3cr3t" not in str(caught.value)

    lenient = model_ref(ref.source_name, COLUMNS | {"name": {"type": "string", "length": 40, "on_error": "null"}})
    loader = Loader(engine, lenient, redaction=REDACTION, run_id="run-1")
    loader.load([record(1) | {"name": secret}, record(2)])
    got = stored(engine, ref)
    assert got[(1,)]["name"] is None and got[(2,)]["name"] == record(2)["name"]


def test_decimal_beyond_scale_or_precision_is_refused(target: Target) -> None:
    ref = model_ref(target.schema("decimal"))
    engine = target.create(ref)
    loader = Loader(engine, ref, redaction=REDACTION, run_id="run-1")
    with pytest.raises(LoadError, match=r"column 'amount': more than 2 decimal places \(DECIMAL\(12,2\)\)"):
        loader.load([record(1) | {"amount": Decimal("1.005")}])
    with pytest.raises(LoadError, match=r"column 'amount': more than 10 digits before the decimal point"):
        loader.load([record(1) | {"amount": Decimal("10000000000")}])
    assert stored(engine, ref) == {}


def test_wide_decimals_keep_every_digit(target: Target) -> None:
    if target.url.startswith("sqlite"):
        pytest.skip("SQLite stores NUMERIC as a 64-bit float: 38 digits cannot survive (dialect limitation)")
    ref = model_ref(target.schema("wide"), {"id": {"type": "integer"}, "x": {"type": "decimal"}})   # DECIMAL(38,10)
    engine = target.create(ref)
    values = [Decimal("9" * 28 + "." + "9" * 10), Decimal("-" + "9" * 28 + "." + "9" * 10), Decimal("0.0000000001"),
              Decimal("1234567890123456789012345678.0123456789")]
    page = [{"id": i, "x": v} for i, v in enumerate(values)]
    load_all(engine, ref, [page])
    assert stored(engine, ref) == reference(ref, [page])


def test_extra_fields_are_ignored_and_missing_ones_are_null(target: Target) -> None:
    ref = model_ref(target.schema("fields"))
    engine = target.create(ref)
    page = [{"id": 1, "name": "only a name", "unknown": object(), RUN_ID: "forged", "amount ": 1},
            {"id": 2}]
    load_all(engine, ref, [page])
    got = stored(engine, ref, meta=True)
    assert got[(1,)] == (normal({"id": 1, "name": "only a name"}, ref)
                         | {RUN_ID: "run-1", LOADED_AT: got[(1,)][LOADED_AT]})
    assert all(v is None for k, v in got[(2,)].items() if k not in ("id", *META_COLUMNS))
