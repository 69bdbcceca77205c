"""The loader's pure parts, without a database: value-fits checks (fast column path and exact
value path must agree), keeping the last record of a key, error summaries, and the statements
each dialect gets, including SQL Server's MERGE, which cannot run here."""
from __future__ import annotations

import math
import random
import types
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mssql, mysql, postgresql, sqlite

from shared.config.models import ColumnType
from shared.load.fit import ColumnFit, Misfit, RecordMisfit, RowFitter, column_fit
from shared.load.loader import Loader, LoadError, drift_reasons, last_of_each_key, summarize_database_error
from shared.load.upsert import ExecuteMany, copy_types, json_as_text, upsert_statement
from shared.target.columns import StoredColumn
from shared.target.compare import TableDiff
from shared.target.tables import model_table
from tests.helpers.load import REDACTION, model_ref, record

UTC = UTC


def fit_of(kind: ColumnType, naive: bool = False, **size) -> tuple:
    return column_fit(StoredColumn("c", kind, **size), naive)


def refused(fit, value) -> str:
    with pytest.raises(Misfit) as caught:
        fit(value)
    return str(caught.value)


# ---------------------------------------------------------------- value by value
def test_integers_stay_in_their_range():
    fit, _ = fit_of(ColumnType.integer)
    assert fit(2**31 - 1) == 2**31 - 1 and fit(-2**31) == -2**31
    assert refused(fit, 2**31) == "value outside the 32-bit integer range"
    assert refused(fit, True) == "expected an integer, got bool"
    assert refused(fit, 1.0) == "expected an integer, got float"
    big, _ = fit_of(ColumnType.bigint)
    assert big(2**63 - 1) == 2**63 - 1
    assert refused(big, -2**63 - 1) == "value outside the 64-bit integer range"


def test_floats_must_be_finite():
    fit, _ = fit_of(ColumnType.float)
    assert fit(3) == 3.0 and type(fit(3)) is float
    for value in (math.nan, math.inf, -math.inf):
        assert refused(fit, value).startswith("not a finite number")
    assert refused(fit, 10**400) == "value outside the range of a double"
    assert refused(fit, Decimal("1.5")) == "expected a number, got Decimal"


def test_decimals_say_which_limit_they_break():
    fit, _ = fit_of(ColumnType.decimal, precision=5, scale=2)
    assert fit(Decimal("999.99")) == Decimal("999.99")
    assert fit(Decimal("-999.99")) == Decimal("-999.99")
    assert fit(Decimal("1.500")) == Decimal("1.5")          # trailing zeros are not places
    assert fit(Decimal("1E+2")) == 100
    assert fit(7) == Decimal(7) and type(fit(7)) is Decimal
    assert refused(fit, Decimal("1000")) == "more than 3 digits before the decimal point (DECIMAL(5,2))"
    assert refused(fit, Decimal("999.995")) == "more than 2 decimal places (DECIMAL(5,2))"
    assert refused(fit, 1000) == "more than 3 digits before the decimal point (DECIMAL(5,2))"
    assert refused(fit, Decimal("NaN")).startswith("not a finite number")
    assert refused(fit, 1.5) == "expected a decimal, got float"
    wide, _ = fit_of(ColumnType.decimal, precision=38, scale=10)
    edge = Decimal("9" * 28 + "." + "9" * 10)
    assert wide(edge) == edge and wide(edge.copy_negate()) == edge.copy_negate()
    assert refused(wide, Decimal("1E+40")).startswith("more than 28 digits")
    assert refused(wide, Decimal("0." + "0" * 10 + "1")) == "more than 10 decimal places (DECIMAL(38,10))"


def test_strings_dates_booleans_and_types():
    fit, _ = fit_of(ColumnType.string, length=3)
    assert fit("abc") == "abc" and fit("日本語") == "日本語"      # characters, not bytes
    assert refused(fit, "abcd") == "value longer than 3 characters"
    assert refused(fit, 5) == "expected text, got int"
    text, _ = fit_of(ColumnType.text)
    assert len(text("x" * 1_000_000)) == 1_000_000
    day, _ = fit_of(ColumnType.date)
    assert day(date(2024, 1, 2)) == date(2024, 1, 2)
    assert refused(day, datetime(2024, 1, 2)) == "expected a date, got datetime"
    flag, _ = fit_of(ColumnType.boolean)
    assert flag(False) is False
    assert refused(flag, 1) == "expected a boolean, got int"


def test_datetimes_are_written_in_utc():
    aware, _ = fit_of(ColumnType.datetime)
    naive, _ = fit_of(ColumnType.datetime, naive=True)
    local = datetime(2024, 6, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert aware(local) == datetime(2024, 6, 1, 12, 0, 0, 5, tzinfo=UTC) and aware(local).tzinfo is UTC
    assert naive(local) == datetime(2024, 6, 1, 12, 0, 0, 5)
    assert aware(datetime(2024, 6, 1)) == datetime(2024, 6, 1, tzinfo=UTC)   # naive in: taken as UTC
    assert naive(datetime(2024, 6, 1)) == datetime(2024, 6, 1)
    assert refused(aware, "2024-06-01T00:00:00Z") == "expected a datetime, got str"


def test_json_is_serialized_once_and_refuses_nan():
    fit, _ = fit_of(ColumnType.json)
    assert fit({"a": ["ü", 1, None]}) == '{"a": ["ü", 1, null]}'
    assert fit({"d": Decimal("1.5")}) == '{"d": "1.5"}'
    assert refused(fit, {"a": [1, float("nan")]}).startswith("JSON not a finite number")
    assert refused(fit, {1, 2}) == "expected JSON (object, array, text, number or boolean), got set"


# ---------------------------------------------------------------- column fast path vs value path
SAMPLES = {
    ColumnType.integer: [0, 1, -5, 2**31 - 1, 2**31, -2**31 - 1, True, 1.0, "1"],
    ColumnType.float: [0.0, 1.5, -2.25, 3, math.nan, math.inf, "x", True],
    ColumnType.decimal: [Decimal("1.25"), Decimal("1.250"), Decimal("1.255"), Decimal("99999"), Decimal("100000"), 7,
                         Decimal("-99999.99"), Decimal("NaN"), 1.5],
    ColumnType.string: ["", "abc", "abcdefghij", "abcdefghijk", 5, "日本"],
    ColumnType.datetime: [datetime(2024, 1, 1, tzinfo=UTC),
                          datetime(2024, 1, 1, 3, tzinfo=timezone(timedelta(hours=3))),
                          datetime(2024, 1, 1), date(2024, 1, 1)],
    ColumnType.json: [{"a": 1}, [1, 2], "s", 3, {"n": math.nan}, {1}],
    ColumnType.boolean: [True, False, 0],
    ColumnType.date: [date(2024, 1, 1), datetime(2024, 1, 1)],
}
SIZES = {ColumnType.decimal: {"precision": 7, "scale": 2}, ColumnType.string: {"length": 10}}


@pytest.mark.parametrize("kind", list(SAMPLES))
@pytest.mark.parametrize("naive", [False, True])
def test_column_fast_path_agrees_with_value_path(kind: ColumnType, naive: bool):
    """The fast path may give up (None) but never accept what the exact check refuses, or differ."""
    fit, bulk = fit_of(kind, naive, **SIZES.get(kind, {}))
    rng = random.Random(5)
    for _ in range(300):
        values = [rng.choice(SAMPLES[kind] + [None]) for _ in range(rng.randint(0, 6))]
        exact = []
        for value in values:
            try:
                exact.append(None if value is None else fit(value))
            except Misfit:
                exact = None
                break
        fast = bulk(list(values))
        if fast is not None:
            assert exact is not None, values
            assert fast == exact and [type(v) for v in fast] == [type(v) for v in exact], values


def rows_of(fitter: RowFitter, records: list[dict]) -> list[tuple]:
    return list(zip(*fitter.columns(records), strict=True))


def test_row_fitter_nulls_on_error_and_never_a_key():
    columns = [StoredColumn("id", ColumnType.integer, primary_key=True), StoredColumn("name", ColumnType.string, 3),
               StoredColumn("score", ColumnType.float)]
    fitter = RowFitter(columns, null_on_error={"id", "name"}, naive_datetimes=False)
    rows = rows_of(fitter, [{"id": 1, "name": "toolong", "score": 1.5, "extra": 1}, {"id": 2}])
    assert rows == [(1, None, 1.5), (2, None, None)]
    assert fitter.nulled == 1
    with pytest.raises(RecordMisfit) as caught:
        fitter.columns([{"id": 1}, {"id": 2, "score": math.inf}])
    assert (caught.value.column, caught.value.index) == ("score", 1)
    with pytest.raises(RecordMisfit, match="key column is null") as caught:
        fitter.columns([{"id": 1}, {"name": "x"}])
    assert caught.value.index == 1
    with pytest.raises(RecordMisfit, match="value outside the 32-bit integer range"):
        fitter.columns([{"id": 2**40}])      # on_error: null does not apply to a key


def test_row_fitter_reads_complete_and_incomplete_records_alike():
    """Records holding every column are gathered by itemgetter; a batch with one record short of
    a column is read field by field, the missing one as None. Both give the same rows."""
    columns = [StoredColumn("id", ColumnType.integer, primary_key=True), StoredColumn("name", ColumnType.string, 10)]
    fitter = RowFitter(columns, null_on_error=set(), naive_datetimes=False)
    complete = [{"id": 1, "name": "a", "extra": 0}, {"id": 2, "name": None}]
    assert rows_of(fitter, complete) == [(1, "a"), (2, None)]
    assert rows_of(fitter, complete + [{"id": 3}]) == [(1, "a"), (2, None), (3, None)]
    assert [list(column) for column in fitter.columns([])] == [[], []]
    single = RowFitter([StoredColumn("id", ColumnType.integer, primary_key=True)], null_on_error=set(),
                       naive_datetimes=False)
    assert rows_of(single, [{"id": 1}, {"id": 2, "other": "x"}]) == [(1,), (2,)]


def test_column_fit_counts_nulls_only_for_misfits():
    column = ColumnFit(StoredColumn("n", ColumnType.integer), null_on_error=True, naive_datetimes=False)
    assert column.values([1, None, "x", 2**40]) == ([1, None, None, None], 2)


def test_last_record_of_each_key_wins():
    rows = [(1, "a"), (2, "b"), (1, "c"), (3, "d"), (2, "e")]
    assert last_of_each_key(rows, [0]) == [(1, "c"), (2, "e"), (3, "d")]
    assert last_of_each_key(rows, []) is rows
    pairs = [("eu", 1, "a"), ("us", 1, "b"), ("eu", 1, "c")]
    assert last_of_each_key(pairs, [0, 1]) == [("eu", 1, "c"), ("us", 1, "b")]


# ---------------------------------------------------------------- errors
class FakeDriverError(Exception):
    pass


def test_database_errors_are_summarised_without_values():
    orig = FakeDriverError('duplicate key value violates unique constraint "items_pkey" DETAIL: Key (id)=(17) exists.\n'
                           "DETAIL:  Key (email)=(secret@example.com) already exists.")
    wrapped = sa.exc.IntegrityError("INSERT INTO t VALUES (%(email)s)", {"email": "secret@example.com"}, orig)
    summary = summarize_database_error(wrapped)
    assert summary == 'FakeDriverError: duplicate key value violates unique constraint "items_pkey"'
    assert "secret" not in summary and "17" not in summary
    assert len(summarize_database_error(FakeDriverError("x" * 1000))) < 230
    assert summarize_database_error(FakeDriverError("")) == "FakeDriverError"


def test_drift_reasons_include_added_and_removed_columns():
    diff = TableDiff("shop", "items", True, added=[StoredColumn("email", ColumnType.string, 10)], removed=["old"],
                     retyped=[("amount", "TEXT", "DECIMAL(12,2)")])
    assert drift_reasons(diff) == ["type of amount changes TEXT -> DECIMAL(12,2)", "column email is missing",
                                   "column old is not in the manifest"]


def test_loader_refuses_a_run_id_wider_than_its_column():
    engine = sa.create_engine("sqlite://")
    with pytest.raises(LoadError, match="run id must be 1 to 36 characters"):
        Loader(engine, model_ref("shop"), redaction=REDACTION, run_id="x" * 37)


# ---------------------------------------------------------------- statements
def items_table(dialect: str) -> sa.Table:
    return json_as_text(model_table(sa.MetaData(), model_ref("shop"), REDACTION, dialect))


def test_mssql_merge_compiles_with_bound_parameters_only():
    table = items_table("mssql")
    statement = upsert_statement(table, ["id"], "mssql")
    compiled = statement.compile(dialect=mssql.pyodbc.dialect(paramstyle="qmark"))
    sql = str(compiled)
    assert sql.startswith("MERGE INTO shop.items WITH (HOLDLOCK) AS tgt USING (VALUES (?, ")
    assert sql.count("?") == len(table.columns)
    assert " AS src (id, name, amount, " in sql and " ON tgt.id = src.id " in sql
    assert "WHEN MATCHED THEN UPDATE SET tgt.name = src.name, " in sql and "tgt.id = src.id," not in sql
    assert "WHEN NOT MATCHED THEN INSERT (id, name, " in sql and sql.endswith("src._kspyder_loaded_at);")
    assert list(compiled.positiontup) == [c.name for c in table.columns]
    row = {c.name: f"value-{c.name}" for c in table.columns}
    assert "value-" not in sql
    params = compiled.construct_params(row)
    assert [params[name] for name in compiled.positiontup] == list(row.values())


def test_mssql_merge_exists_only_for_mssql():
    with pytest.raises(sa.exc.UnsupportedCompilationError):
        upsert_statement(items_table("mssql"), ["id"], "mssql").compile(dialect=sqlite.dialect())


class RecordingConnection:
    def __init__(self):
        self.calls = []

    def execute(self, statement, params):
        self.calls.append((statement, params))


def fake_mssql_engine() -> sa.Engine:
    class Cursor:
        def nextset(self):
            pass
    fake_pyodbc = types.SimpleNamespace(paramstyle="qmark", version="5.0.0", Error=FakeDriverError, Cursor=Cursor)
    return sa.create_engine("mssql+pyodbc://user:pw@dsn", module=fake_pyodbc)


def test_mssql_batches_go_through_merge_executemany():
    """The whole SQL Server path short of a server: fit (offsets kept), one dict per row, MERGE."""
    loader = Loader(fake_mssql_engine(), model_ref("shop"), redaction=REDACTION, run_id="run-1")
    rows = loader._rows([record(1), record(2), record(1, version=2)], 0)
    connection = RecordingConnection()
    loader._writer.write(connection, rows)
    [(statement, params)] = connection.calls
    assert "MERGE INTO" in str(statement.compile(dialect=loader.engine.dialect))
    assert [p["id"] for p in params] == [1, 2] and params[0]["name"].startswith("item 1 v2")
    assert params[0]["updated"].tzinfo is not None and params[0]["_kspyder_run_id"] == "run-1"
    assert isinstance(params[0]["tags"], str)


@pytest.mark.parametrize("dialect, module, expected", [
    ("sqlite", sqlite, "ON CONFLICT (id) DO UPDATE SET name = excluded.name"),
    ("mysql", mysql, "ON DUPLICATE KEY UPDATE name = VALUES(name)"),
    ("postgresql", postgresql, "ON CONFLICT (id) DO UPDATE SET name = excluded.name"),
])
def test_executemany_upserts_per_dialect(dialect: str, module, expected: str):
    sql = str(upsert_statement(items_table(dialect), ["id"], dialect).compile(dialect=module.dialect()))
    assert sql.startswith("INSERT INTO shop.items (id, name, ") and expected in sql
    assert "SET id =" not in sql and "id = VALUES(id)" not in sql


def test_keyless_models_get_plain_inserts():
    sql = str(upsert_statement(items_table("sqlite"), [], "sqlite").compile(dialect=sqlite.dialect()))
    assert sql.startswith("INSERT INTO shop.items") and "CONFLICT" not in sql


def test_postgres_copy_types_match_the_columns():
    table = items_table("postgresql")
    assert copy_types(table, postgresql.psycopg.dialect()) == [
        "int4", "text", "numeric", "float8", "bool", "date", "timestamptz", "text", "text", "text", "timestamptz"]
    odd = sa.Table("t", sa.MetaData(), sa.Column("x", postgresql.INTERVAL()))
    assert copy_types(odd, postgresql.psycopg.dialect()) is None     # text COPY then


def test_execute_many_binds_one_dict_per_row():
    connection = RecordingConnection()
    ExecuteMany(sa.text("x"), ["a", "b"]).write(connection, [(1, 2), (3, None)])
    assert connection.calls[0][1] == [{"a": 1, "b": 2}, {"a": 3, "b": None}]


def test_misfit_messages_name_model_key_and_column():
    loader = Loader(sa.create_engine("sqlite://"), model_ref("shop"), redaction=REDACTION, run_id="run-1", batch_size=2)
    with pytest.raises(LoadError) as caught:
        loader._rows([record(1), record(2), record(3) | {"active": "yes"}][2:], 2)
    assert str(caught.value) == ("shop.items: record #2 of the page, column 'active': expected a boolean, got str "
                                 "(set on_error: null on the column to load NULL instead)")
    with pytest.raises(LoadError) as caught:
        loader._rows([record(1) | {"id": None}], 0)
    assert str(caught.value) == "shop.items: record #0 of the page, column 'id': key column is null"
    keyless = Loader(sa.create_engine("sqlite://"), model_ref("shop", key=()), redaction=REDACTION, run_id="run-1")
    with pytest.raises(LoadError, match=r"^shop\.items: record #4 of the page, column 'score': not a finite"):
        keyless._rows([record(1) | {"score": math.nan}], 4)


def test_sqlite_binds_a_batch_constant_once_and_anything_else_per_row():
    from shared.load.upsert import SqliteExecuteMany
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("at", sa.DateTime),
                     sa.Column("_kspyder_run_id", sa.String(36)), sa.Column("_kspyder_loaded_at", sa.DateTime))
    dialect = sqlite.dialect()
    writer = SqliteExecuteMany(upsert_statement(table, ["id"], "sqlite"), table, dialect)
    process = table.c.at.type._cached_bind_processor(dialect)
    now, later = datetime(2026, 11, 24, 3, 4, 5, 6), datetime(2026, 11, 24, 3, 4, 6)
    constant = [(i, now, "run", now) for i in range(3)]
    varying = [(0, now, "run", now), (1, now, "run", later), (2, None, "run", None)]
    for rows in (constant, varying):
        expected = [tuple(None if v is None else process(v) if isinstance(v, datetime) else v for v in row)
                    for row in rows]
        bound = writer.bind_columns(list(zip(*rows, strict=True)))
        assert [tuple(c) for c in bound] == list(zip(*expected, strict=True))
