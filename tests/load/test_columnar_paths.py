"""The speed paths of issue 3 against their reference implementations: the generated record shaper
against `RecordShaper.shape_each`, the one-shot JSON encoder against `fit.encode_json`, SQLite's
column-wise bind processing against SQLAlchemy's per-value processors, and the overlapped writer's
ordering and error semantics."""
from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from shared.config.models import Column
from shared.errors import ConversionError
from shared.extract.records import RecordShaper
from shared.load.fit import encode_json, json_bulk
from shared.load.json_text import encode_json_fast
from shared.load.loader import LoadError, PreparedBatch
from shared.load.upsert import SqliteExecuteMany, sqlite_upsert
from shared.pipeline.overlap import OverlappedWriter

COLUMNS = {
    "id": {"type": "integer"},
    "big": {"type": "bigint", "on_error": "null"},
    "ratio": {"type": "float"},
    "amount": {"type": "decimal", "precision": 6, "scale": 2},
    "flag": {"type": "boolean", "on_error": "null"},
    "name": {"type": "string", "length": 5},
    "note": {"type": "text"},
    "day": {"type": "date"},
    "at": {"type": "datetime"},
    "doc": {"type": "json"},
    "city": {"path": "address.city", "type": "string", "length": 8},
    "zip": {"path": "address.zip", "type": "string"},
    "first_sku": {"path": "lines.0.sku", "type": "string"},
    "deep": {"path": "a.b.c", "type": "integer", "on_error": "null"},
}
PLUS_TWO = timezone(timedelta(hours=2))

RECORDS = [
    {},                                                                      # every column missing
    {"id": 1, "big": 2**40, "ratio": 0.5, "amount": "1234.56", "flag": True, "name": "abcde", "note": "é ✓",
     "day": "2024-02-29", "at": "2024-03-05T10:15:00+02:00", "doc": {"k": [1, None]},
     "address": {"city": "Delft", "zip": 2611}, "lines": [{"sku": "A1"}], "a": {"b": {"c": "7"}}},
    {"id": "2", "big": "x", "ratio": "1e3", "amount": 9999.99, "flag": "maybe", "name": 123, "note": None,
     "day": datetime(2024, 1, 1, 23, 0), "at": datetime(2024, 1, 1, 20, 0, tzinfo=PLUS_TWO), "doc": "text",
     "address": None, "lines": [], "a": {"b": "not a dict"}},
    {"id": 3.0, "big": None, "ratio": 2, "amount": Decimal("-0.01"), "flag": "no", "note": {"nested": 1},
     "at": "2024-03-05T10:15:00", "address": {"city": None}, "lines": "oops", "a": None},
    {"id": 4, "at": 0, "address": "flat", "amount": "  12.5 "},
    {"id": 5, "big": 1.0, "at": "2024-03-05 10:15:00Z", "flag": 1, "a": {"b": {"c": 2.5}}},
]


def shaper(columns: dict = COLUMNS) -> RecordShaper:
    cols = {name: Column.model_validate(spec) for name, spec in columns.items()}
    return RecordShaper("shop", "things", cols, ["id"] if "id" in cols else [])


@pytest.mark.parametrize("index", range(len(RECORDS)))
def test_generated_shaper_equals_the_reference(index):
    s = shaper()
    fast, reference = s.shape(RECORDS[index], index), s.shape_each(RECORDS[index], index)
    assert fast == reference
    assert list(fast) == list(reference) == list(COLUMNS)                  # declared order
    assert [type(v) for v in fast.values()] == [type(v) for v in reference.values()]


def test_generated_shaper_nulls_on_error_only_where_asked():
    out = shaper().shape(RECORDS[2], 2)
    assert out["big"] is None and out["flag"] is None and out["deep"] is None
    assert out["name"] == "123" and out["id"] == 2 and out["city"] is None


@pytest.mark.parametrize("record, column, expected", [
    ({"id": 1, "name": "toolong"}, "name", "expected at most 5 characters, got 7"),
    ({"id": 1, "amount": "abc"}, "amount", "expected a decimal, got text that is not a number"),
    ({"id": 1, "at": "yesterday"}, "at", "expected an ISO 8601 datetime"),
    ({"id": 1, "address": {"city": "Amsterdam-Zuid"}}, "city", "expected at most 8 characters, got 14"),
    ({"id": 1, "ratio": True}, "ratio", "expected a number, got a boolean"),
])
def test_generated_shaper_raises_what_the_reference_raises(record, column, expected):
    s = shaper()
    with pytest.raises(ConversionError) as fast:
        s.shape(record, 0)
    with pytest.raises(ConversionError) as reference:
        s.shape_each(record, 0)
    assert str(fast.value) == str(reference.value)
    assert f"column '{column}': {expected}" in str(fast.value) and "record #0," in str(fast.value)


def test_generated_shaper_refuses_a_record_that_is_not_an_object():
    with pytest.raises(ConversionError, match=r"record #4 is a list, expected an object"):
        shaper().shape([1, 2], 4)


def test_generated_shaper_takes_hostile_names_as_data():
    """Names and paths reach the generated code as values: text that would be code stays text."""
    columns = {"x": {"path": "a'); import os; ('", "type": "string"}, "y": {"path": "b.c\"+1", "type": "string"}}
    s = shaper(columns)
    record = {"a'); import os; ('": "one", "b": {"c\"+1": "two"}}
    assert s.shape(record, 0) == s.shape_each(record, 0) == {"x": "one", "y": "two"}


def test_two_columns_under_one_object_read_it_once_each_record():
    reads = []

    class Tracing(dict):
        def get(self, key, default=None):
            reads.append(key)
            return super().get(key, default)

    s = shaper({"city": {"path": "address.city", "type": "string"}, "zip": {"path": "address.zip", "type": "string"}})
    assert s.shape(Tracing(address={"city": "Delft", "zip": "2611"}), 0) == {"city": "Delft", "zip": "2611"}
    assert reads == ["address"]


# ---------------------------------------------------------------- JSON
@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True, "é ✓ \"q\" \\ \n"]}, [], {}, [{"deep": [[[{"x": "y"}]]]}],
    {"amount": Decimal("1.50"), "when": datetime(2024, 1, 1, tzinfo=UTC), "day": date(2024, 1, 2)},
    {1: "int key", 2.5: "float key", None: "null key"}, {True: "bool key"}, ["\ud800 lone surrogate"],
])
def test_one_shot_json_encoder_writes_what_encode_json_writes(value):
    assert encode_json_fast(value) == encode_json(value)


def test_json_bulk_sends_nan_and_cycles_the_slow_way():
    cycle: list = []
    cycle.append(cycle)
    assert json_bulk([{"x": float("nan")}]) is None
    assert json_bulk([cycle]) is None
    assert json_bulk([None, {"a": 1}, [2]]) == [None, '{"a": 1}', "[2]"]


# ---------------------------------------------------------------- SQLite binds
def test_sqlite_column_wise_binds_equal_sqlalchemy_per_value_binds():
    dialect = sqlite.dialect()
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("at", sa.DateTime(timezone=True)), sa.Column("plain", sa.DateTime()),
                     sa.Column("amount", sa.Numeric(12, 2)), sa.Column("day", sa.Date()),
                     sa.Column("flag", sa.Boolean()), sa.Column("name", sa.String(20)), schema="s")
    writer = SqliteExecuteMany(sqlite_upsert(table, ["id"]), table, dialect)
    rows = [(1, datetime(2024, 3, 5, 10, 15), datetime(1, 1, 1, 0, 0, 0, 7), Decimal("12.34"), date(2024, 2, 29),
             True, "a"),
            (2, None, None, None, None, None, None),
            (3, datetime(2024, 3, 5, 10, 15, 0, 120, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, 999999),
             Decimal("-0.01"), date(1, 1, 1), False, "é")]
    expected = [tuple(value if process is None or value is None else process(value)
                      for value, process in zip(row, writer.processors, strict=True)) for row in rows]
    assert list(zip(*writer.bind_columns(list(zip(*rows, strict=True))), strict=True)) == expected
    assert [list(column) for column in writer.bind_columns([()] * 7)] == [[]] * 7


# ---------------------------------------------------------------- overlapped writer
class FakeLoader:
    """Records the order and thread of writes; fails at the batch whose first position is `fail_at`."""

    def __init__(self, fail_at: int | None = None, gate: threading.Event | None = None):
        self.written, self.threads, self.fail_at, self.gate = [], set(), fail_at, gate

    def write(self, batch: PreparedBatch) -> int:
        if self.gate is not None:
            self.gate.wait(5)
        self.threads.add(threading.get_ident())
        if batch.first == self.fail_at:
            raise LoadError(f"batch {batch.first} failed")
        self.written.append(batch.first)
        return len(batch.rows)


def batch(first: int, rows: int = 2) -> PreparedBatch:
    return PreparedBatch([(i,) for i in range(rows)], first, rows)


def server_engine() -> sa.Engine:
    """A server database's engine (never connected: FakeLoader writes nothing), so writes go to the thread."""
    return sa.create_engine("postgresql+psycopg://kspyder@127.0.0.1:1/unused")


def test_overlapped_writes_keep_order_and_report_on_the_callers_thread(tmp_path):
    loader, reported = FakeLoader(), []
    caller = threading.get_ident()

    def report(tag, rows):
        reported.append((tag, rows, threading.get_ident()))

    with OverlappedWriter(loader, server_engine(), report) as w:
        for first in range(0, 50, 5):
            w.submit(batch(first), f"pages {first}")
    assert loader.written == list(range(0, 50, 5))
    assert [tag for tag, _, _ in reported] == [f"pages {first}" for first in range(0, 50, 5)]
    assert {thread for _, _, thread in reported} == {caller} and caller not in loader.threads


def test_a_failed_write_stops_the_next_submit_and_nothing_after_it_is_written(tmp_path):
    loader, reported = FakeLoader(fail_at=5), []
    w = OverlappedWriter(loader, server_engine(), lambda tag, rows: reported.append(tag))
    w.submit(batch(0), "a")
    w.submit(batch(5), "b")
    with pytest.raises(LoadError, match="batch 5 failed"):
        w.submit(batch(10), "c")
    w.close()
    assert loader.written == [0] and reported == ["a"]


def test_a_failed_write_is_raised_by_close(tmp_path):
    w = OverlappedWriter(FakeLoader(fail_at=0), server_engine(), lambda tag, rows: None)
    w.submit(batch(0), "a")
    with pytest.raises(LoadError, match="batch 0 failed"):
        w.close()


def test_stopping_for_another_error_waits_for_the_batch_in_flight(tmp_path):
    gate, reported = threading.Event(), []
    loader = FakeLoader(gate=gate)
    with pytest.raises(RuntimeError, match="extraction broke"):
        with OverlappedWriter(loader, server_engine(), lambda tag, rows: reported.append(tag)) as w:
            w.submit(batch(0), "a")
            gate.set()
            raise RuntimeError("extraction broke")
    assert loader.written == [0] and reported == ["a"]


def test_the_write_failure_wins_over_a_later_error(tmp_path):
    w = OverlappedWriter(FakeLoader(fail_at=0), server_engine(), lambda tag, rows: None)
    with pytest.raises(LoadError, match="batch 0 failed"):
        with w:
            w.submit(batch(0), "a")
            raise RuntimeError("extraction broke")


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///{tmp}/x.db"])
def test_sqlite_is_written_on_the_callers_thread(url, tmp_path):
    loader = FakeLoader()
    with OverlappedWriter(loader, sa.create_engine(url.format(tmp=tmp_path)), lambda tag, rows: None) as w:
        w.submit(batch(0), "a")
        assert loader.written == [0]
    assert loader.threads == {threading.get_ident()}


# ---------------------------------------------------------------- generated shaper, any input
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["12", " 7 ", "1.50", "2024-02-29", "yes", "nan", "1e400",
                                                           "2024-03-05T10:15:00+02:00", "abcdefghi", "-0"]),
                    st.decimals(allow_nan=True, places=3), st.datetimes(), st.dates())
KEYS = st.sampled_from(["city", "zip", "sku", "b", "c"])
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(KEYS, inner, max_size=3)),
                      max_leaves=6)
RAW = st.dictionaries(st.sampled_from(["id", "big", "ratio", "amount", "flag", "name", "note", "day", "at", "doc",
                                       "address", "lines", "a", "extra"]), VALUES, max_size=14)
SHAPER = shaper()


def outcome(shape, raw):
    """The record, or the exception (type and message): what escapes one must escape the other."""
    try:
        return "ok", shape(raw, 9)
    except Exception as exc:   # noqa: BLE001 - any difference is a failure of the generated code
        return "error", f"{type(exc).__name__}: {exc}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RAW)
def test_generated_shaper_equals_the_reference_on_any_record(raw):
    fast, reference = outcome(SHAPER.shape, raw), outcome(SHAPER.shape_each, raw)
    assert fast[0] == reference[0]
    if fast[0] == "error":
        assert fast[1] == reference[1]
    else:
        assert list(fast[1].items()) == list(reference[1].items()) or repr(fast[1]) == repr(reference[1])
