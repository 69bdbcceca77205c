"""Record shaping: paths, type conversion, and errors that name the column but never the value."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from shared.config.models import Column
from shared.errors import ConversionError
from shared.extract.records import RecordShaper, compile_path


def shaper(columns: dict, key=("id",)) -> RecordShaper:
    cols = {name: Column.model_validate(spec) for name, spec in columns.items()}
    return RecordShaper("shop", "customers", cols, [k for k in key if k in cols])


@pytest.mark.parametrize("path, record, expected", [
    ("a", {"a": 1}, 1),
    ("a.b", {"a": {"b": 2}}, 2),
    ("a.1.b", {"a": [{"b": 1}, {"b": 2}]}, 2),
    ("a.-1", {"a": [1, 2, 3]}, 3),
    ("a.5", {"a": [1]}, None),
    ("a.b", {"a": None}, None),
    ("a.b", {"a": "text"}, None),
    ("a.b.c", {}, None),
])
def test_compile_path(path, record, expected):
    assert compile_path(path)(record) == expected


@pytest.mark.parametrize("type_, raw, expected", [
    ("integer", "42", 42), ("integer", 42.0, 42), ("integer", " 7 ", 7), ("bigint", 2**40, 2**40),
    ("float", "1.5", 1.5), ("float", 3, 3.0),
    ("decimal", "1234.56", Decimal("1234.56")), ("decimal", 0.1, Decimal("0.1")),
    ("boolean", "yes", True), ("boolean", "FALSE", False), ("boolean", 1, True),
    ("string", 12, "12"), ("string", {"a": 1}, '{"a":1}'), ("text", "héllo ✓", "héllo ✓"),
    ("date", "2024-03-05", date(2024, 3, 5)), ("date", "2024-03-05T23:00:00+02:00", date(2024, 3, 5)),
    ("datetime", "2024-03-05T10:15:00+02:00", datetime(2024, 3, 5, 8, 15, tzinfo=UTC)),
    ("datetime", "2024-03-05T10:15:00Z", datetime(2024, 3, 5, 10, 15, tzinfo=UTC)),
    ("datetime", "2024-03-05T10:15:00", datetime(2024, 3, 5, 10, 15, tzinfo=UTC)),
    ("datetime", 0, datetime(1970, 1, 1, tzinfo=UTC)),
    ("json", {"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}),
])
def test_conversions(type_, raw, expected):
    out = shaper({"id": {"type": "integer"}, "v": {"type": type_}}).shape({"id": 1, "v": raw}, 0)
    assert out["v"] == expected
    assert type(out["v"]) is type(expected)


def test_aware_datetime_is_converted_to_utc():
    tz = timezone(timedelta(hours=-5))
    out = shaper({"v": {"type": "datetime"}}).shape({"v": datetime(2024, 1, 1, 20, 0, tzinfo=tz)}, 0)
    assert out["v"] == datetime(2024, 1, 2, 1, 0, tzinfo=UTC) and out["v"].tzinfo == UTC


def test_missing_fields_are_none_and_extra_fields_ignored():
    out = shaper({"id": {"type": "integer"}, "city": {"path": "address.city", "type": "string"}}).shape(
        {"id": 3, "unexpected": "x"}, 0)
    assert out == {"id": 3, "city": None}


@pytest.mark.parametrize("type_, raw, reason", [
    ("integer", "12abc", "expected an integer"),
    ("integer", 1.5, "expected an integer, got a fractional number"),
    ("integer", True, "expected an integer, got a boolean"),
    ("decimal", "NaN", "expected a finite decimal"),
    ("boolean", "maybe", "expected a boolean"),
    ("date", "05/03/2024", "expected an ISO 8601 date"),
    ("datetime", "yesterday", "expected an ISO 8601 datetime"),
    ("float", Decimal("sNaN"), "expected a number, got a signaling NaN"),
    ("float", 10**400, "expected a number, got one too large for a double"),
])
def test_conversion_error_names_source_model_position_and_column_not_value(type_, raw, reason):
    with pytest.raises(ConversionError) as info:
        shaper({"id": {"type": "integer"}, "v": {"type": type_}}).shape({"id": 17, "v": raw}, 4)
    message = str(info.value)
    assert message.startswith("shop.customers: record #4, column 'v': " + reason)
    assert str(raw) not in message and "17" not in message


def test_conversion_error_never_shows_a_plain_key():
    s = shaper({"email": {"type": "string"}, "v": {"type": "integer"}}, key=("email",))
    with pytest.raises(ConversionError) as info:
        s.shape({"email": "person@example.com", "v": "x"}, 3)
    assert "record #3" in str(info.value) and "person" not in str(info.value)


def test_string_length_is_enforced():
    with pytest.raises(ConversionError, match="expected at most 3 characters, got 5"):
        shaper({"v": {"type": "string", "length": 3}}).shape({"v": "abcde"}, 0)


def test_on_error_null_loads_null():
    columns = {"id": {"type": "integer"}, "v": {"type": "integer", "on_error": "null"}}
    out = shaper(columns).shape({"id": 1, "v": "x"}, 0)
    assert out["v"] is None


def test_pii_key_is_not_shown_in_errors():
    s = shaper({"email": {"type": "string", "pii": "drop"}, "v": {"type": "integer"}}, key=("email",))
    with pytest.raises(ConversionError) as info:
        s.shape({"email": "jane@example.com", "v": "x"}, 9)
    assert "record #9" in str(info.value) and "jane" not in str(info.value)


def test_non_object_record_is_an_error():
    with pytest.raises(ConversionError, match=r"record #2 is a list, expected an object"):
        shaper({"v": {"type": "integer"}}).shape([1, 2], 2)
