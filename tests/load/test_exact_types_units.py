"""Issue 17 §2 over bare objects: binary values, values a column does not recognise, the date of an
aware value, `on_error: null` spelled bare, and `naming: snake_case`."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from shared.chain.pages import ChainError, decode_page, encode_page
from shared.config.models import Column, ColumnType
from shared.config.naming import snake_case
from shared.errors import ConversionError
from shared.extract.records import RecordShaper, converter_for
from shared.load.fit import Misfit, RecordMisfit, RowFitter, json_fit
from shared.outputs.writers import dumps
from shared.target.columns import StoredColumn, stored_column
from shared.target.dialects import column_type, logical_type
from tests.helpers.flow import project_for

TOKYO = ZoneInfo("Asia/Tokyo")
LATE_EVENING_UTC = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)   # already 2 March in Tokyo


def convert(spec: dict, value):
    return converter_for(Column.model_validate(spec))(value)


# ---------------------------------------------------------------- dates of aware values
@pytest.mark.parametrize("value", [
    LATE_EVENING_UTC.astimezone(TOKYO),            # what psycopg returns in a Tokyo session
    LATE_EVENING_UTC,
    "2024-03-02T08:30:00+09:00",                   # an API that writes local time with its offset
    "2024-03-01T18:30:00-05:00",
    "2024-03-01T23:30:00Z",
], ids=["tokyo-datetime", "utc-datetime", "tokyo-text", "new-york-text", "z-text"])
def test_date_of_an_aware_value_is_its_utc_date(value):
    assert convert({"type": "date"}, value) == date(2024, 3, 1)


def test_date_takes_the_zone_the_column_declares():
    spec = {"type": "date", "timezone": "Asia/Tokyo"}
    assert convert(spec, LATE_EVENING_UTC) == date(2024, 3, 2)
    assert convert(spec, "2024-03-01T23:30:00+00:00") == date(2024, 3, 2)
    assert convert({"type": "date", "timezone": "America/New_York"}, LATE_EVENING_UTC) == date(2024, 3, 1)


def test_naive_values_and_plain_dates_keep_their_date():
    assert convert({"type": "date"}, datetime(2024, 3, 1, 23, 30)) == date(2024, 3, 1)
    assert convert({"type": "date", "timezone": "Asia/Tokyo"}, "2024-03-01") == date(2024, 3, 1)
    assert convert({"type": "date"}, "2024-03-01T23:30:00") == date(2024, 3, 1)
    assert convert({"type": "date"}, date(2024, 3, 1)) == date(2024, 3, 1)


# ---------------------------------------------------------------- values a column does not recognise
@pytest.mark.parametrize("value", [b"\x00\xff", bytearray(b"ab"), memoryview(b"ab")])
def test_binary_data_in_a_text_column_is_an_error_never_its_repr(value):
    shaper = RecordShaper("db", "files", {"id": Column(type=ColumnType.integer),
                                          "body": Column(type=ColumnType.string)}, ["id"])
    with pytest.raises(ConversionError) as info:
        shaper.shape({"id": 7, "body": value}, 3)
    assert str(info.value) == ("db.files: record #3, column 'body': expected text, got binary data "
                               "(declare the column type: binary) "
                               "(set on_error: null on the column to load NULL instead)")


def test_unknown_objects_are_refused_and_known_ones_are_text():
    with pytest.raises(ValueError, match="expected text, got timedelta"):
        convert({"type": "text"}, timedelta(days=1))
    key = uuid.UUID(int=5)
    assert convert({"type": "string"}, key) == str(key)
    assert convert({"type": "text"}, Decimal("1.50")) == "1.50"
    assert convert({"type": "text"}, time(12, 30)) == "12:30:00"
    assert convert({"type": "text"}, date(2024, 1, 2)) == "2024-01-02"
    assert convert({"type": "text"}, {"at": date(2024, 1, 2), "n": Decimal("2.5")}) == '{"at":"2024-01-02","n":"2.5"}'
    with pytest.raises(ValueError, match="a JSON value cannot hold binary data"):
        convert({"type": "text"}, {"blob": b"x"})


def test_json_columns_refuse_binary_inside_and_write_dates_as_iso():
    assert json_fit([date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, tzinfo=UTC)]) == \
        '["2024-01-02", "2024-01-02T03:04:00+00:00"]'
    with pytest.raises(Misfit, match="a JSON value cannot hold binary data"):
        json_fit({"a": [b"x"]})
    fitter = RowFitter([StoredColumn("id", ColumnType.integer, primary_key=True), StoredColumn("doc", ColumnType.json)],
                       set(), naive_datetimes=False)
    with pytest.raises(RecordMisfit) as info:
        fitter.columns([{"id": 1, "doc": {"a": 1}}, {"id": 2, "doc": {"a": b"x"}}])
    assert (info.value.column, info.value.index) == ("doc", 1)


# ---------------------------------------------------------------- the binary type
def test_binary_converter_takes_bytes_from_drivers_and_base64_text():
    assert convert({"type": "binary"}, memoryview(b"\x00\x01")) == b"\x00\x01"
    assert convert({"type": "binary"}, bytearray(b"\x02")) == b"\x02"
    assert convert({"type": "binary"}, base64.b64encode(b"\xff\x00").decode()) == b"\xff\x00"
    with pytest.raises(ValueError, match="not base64"):
        convert({"type": "binary"}, "not base64!")
    with pytest.raises(ValueError, match="expected binary data, got int"):
        convert({"type": "binary"}, 5)


def test_binary_fit_takes_bytes_only():
    fitter = RowFitter([StoredColumn("id", ColumnType.integer, primary_key=True), StoredColumn("b", ColumnType.binary)],
                       set(), naive_datetimes=False)
    assert fitter.columns([{"id": 1, "b": b"\x00"}, {"id": 2, "b": None}]) == [(1, 2), (b"\x00", None)]
    with pytest.raises(RecordMisfit, match="expected binary data, got str"):
        fitter.columns([{"id": 1, "b": "text"}])


def test_binary_is_stored_as_a_binary_type_and_reads_back_as_binary():
    stored = stored_column("b", Column(type=ColumnType.binary), "[REDACTED]")
    assert stored.type == ColumnType.binary and stored.describe() == "BINARY"
    assert stored_column("b", Column(type=ColumnType.binary, pii="hash"), "[REDACTED]").type == ColumnType.string
    assert stored_column("b", Column(type=ColumnType.binary, pii="drop"), "[REDACTED]") is None
    ddl = {name: column_type(stored).compile(dialect=d) for name, d in
           (("pg", postgresql.dialect()), ("maria", mysql.dialect()), ("sqlite", sqlite.dialect()))}
    assert ddl == {"pg": "BYTEA", "maria": "LONGBLOB", "sqlite": "BLOB"}
    for reflected in (postgresql.BYTEA(), mysql.LONGBLOB(), mysql.VARBINARY(16), sqlite.BLOB(), sa.LargeBinary()):
        assert logical_type(reflected, "postgresql").type == ColumnType.binary


@pytest.mark.parametrize("rule", ["mask", "redact", {"rule": "generalize", "kind": "postcode"}])
def test_binary_takes_drop_or_hash_only(rule):
    with pytest.raises(ValueError, match="a binary column takes pii rule drop or hash only"):
        Column.model_validate({"type": "binary", "pii": rule})


def test_json_outputs_and_chain_pages_carry_binary_as_base64():
    record = {"id": 1, "b": b"\xff\x00", "d": Decimal("1.5")}
    assert json.loads(dumps(record)) == {"id": 1, "b": "/wA=", "d": "1.5"}
    columns = [StoredColumn("id", ColumnType.integer), StoredColumn("b", ColumnType.binary)]
    assert decode_page(encode_page([record, {"id": 2, "b": None}]), columns) == \
        [{"id": 1, "b": b"\xff\x00", "d": "1.5"}, {"id": 2, "b": None}]
    with pytest.raises(ChainError, match=r"record #1, column 'doc': a JSON value cannot hold binary data"):
        encode_page([{"id": 1, "doc": {}}, {"id": 2, "doc": {"x": b"1"}}])


# ---------------------------------------------------------------- on_error: null, naming
def test_on_error_null_written_bare_in_yaml_is_accepted(tmp_path):
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "connector_models.yml").write_text(
        "sources:\n  shop:\n    type: api\n    base_url: http://127.0.0.1:1\n    models:\n"
        "      c:\n        path: /c\n        columns:\n          n: {type: integer, on_error: null}\n")
    from shared.config.project import load_project
    project = load_project(folder, env={})
    assert project.sources["shop"].models["c"].columns["n"].on_error == "null"


@pytest.mark.parametrize("name, snake", [("InvoiceLine", "invoice_line"), ("UnitPrice", "unit_price"),
                                         ("HTTPStatus", "http_status"), ("customer_id", "customer_id"),
                                         ("Unit Price", "unit_price"), ("lineNo2", "line_no2")])
def test_snake_case(name, snake):
    assert snake_case(name) == snake


def test_naming_snake_case_renames_targets_and_keeps_source_names_as_paths(tmp_path):
    project = project_for(tmp_path, {"Chinook": {"type": "sql", "url": "sqlite://", "naming": "snake_case", "models": {
        "InvoiceLine": {"table": "InvoiceLine", "primary_key": ["InvoiceLineId"],
                        "columns": {"InvoiceLineId": {"type": "integer"}, "UnitPrice": {"type": "decimal"},
                                    "Note": {"type": "text", "path": "Remarks"}}}}},
                          "Other": {"type": "sql", "url": "sqlite://", "models": {
                              "InvoiceLine": {"table": "InvoiceLine", "columns": {"UnitPrice": {"type": "decimal"}}}}}})
    [ref] = project.models(["Chinook"])
    assert (ref.source_name, ref.name, ref.model.table, ref.model.primary_key) == \
        ("Chinook", "invoice_line", "InvoiceLine", ["invoice_line_id"])
    assert {n: c.path for n, c in ref.model.columns.items()} == \
        {"invoice_line_id": "InvoiceLineId", "unit_price": "UnitPrice", "note": "Remarks"}
    [other] = project.models(["Other"])   # default: names as written
    assert other.name == "InvoiceLine" and list(other.model.columns) == ["UnitPrice"]


def test_naming_snake_case_on_an_api_source_reads_the_camel_case_keys(tmp_path):
    project = project_for(tmp_path, {"crm": {"type": "api", "base_url": "http://127.0.0.1:1", "naming": "snake_case",
                                             "models": {"openDeals": {"path": "/deals", "primary_key": ["dealId"],
                                                                      "columns": {"dealId": {"type": "integer"},
                                                                                  "closedAt": {"type": "datetime"}}}}}})
    [ref] = project.models()
    assert ref.name == "open_deals" and ref.model.primary_key == ["deal_id"]
    shaper = RecordShaper("crm", ref.name, ref.model.columns, ref.model.primary_key)
    assert shaper.shape({"dealId": 4, "closedAt": "2024-01-02T03:04:05Z"}, 0) == \
        {"deal_id": 4, "closed_at": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)}


def test_a_binary_column_takes_hash_or_drop():
    assert Column.model_validate({"type": "binary", "pii": "hash"}).pii.rule.value == "hash"
    assert Column.model_validate({"type": "binary", "pii": "drop"}).pii.rule.value == "drop"
