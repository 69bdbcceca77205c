"""Shape raw API rows or SQL rows into the model's columns, with the declared types.

Built once per model (paths and converters compiled up front) because it runs on every record.
Errors name the source, model, record position and column; never a value, which may be PII (a key
is a value too: an e-mail used as key, or the raw key of a column hashed later).
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from shared.config.child_tables import ChildTable
from shared.config.models import Column, ColumnType
from shared.errors import BadValue, ConversionError
from shared.extract.shape_compile import ColumnPlan, compile_shape
from shared.extract.time_formats import date_reader, datetime_reader

_MISSING = object()
_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off"}
BINARY_TYPES = (bytes, bytearray, memoryview)
# Zones that are UTC at every instant (ZoneInfo instances are cached per key, so psycopg's are these)
UTC_ZONES = frozenset({ZoneInfo("UTC"), ZoneInfo("Etc/UTC")})


def two_part_path(path: str | None) -> tuple[str, str] | None:
    """(outer, inner) when `compile_path` reads `path` as a plain nested key (`address.city`)."""
    parts = (path or "").split(".")
    if len(parts) == 2 and not any(p.lstrip("-").isdigit() for p in parts):
        return parts[0], parts[1]
    return None


def compile_path(path: str) -> Callable[[Any], Any]:
    """A getter for a dotted path (`address.city`, `lines.0.sku`); absent parts give None."""
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return lambda record: record.get(key) if isinstance(record, dict) else None
    if two_part_path(path) is not None:
        outer, inner = parts   # `address.city`: the common nested case, without the loop

        def get_nested(record: Any) -> Any:
            node = record.get(outer) if isinstance(record, dict) else None
            return node.get(inner) if isinstance(node, dict) else None

        return get_nested
    steps = [(part, int(part) if part.lstrip("-").isdigit() else None) for part in parts]

    def get(record: Any) -> Any:
        node = record
        for key, index in steps:
            if isinstance(node, dict):
                node = node.get(key)
            elif isinstance(node, list) and index is not None and -len(node) <= index < len(node):
                node = node[index]
            else:
                return None
            if node is None:
                return None
        return node

    return get


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise BadValue("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise BadValue("expected an integer, got a fractional number")
    if isinstance(value, (str, Decimal)):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise BadValue("expected an integer, got text that is not a number") from None
        if number.is_finite() and number == number.to_integral_value():
            return int(number)
        raise BadValue("expected an integer, got a fractional or non-finite number")
    raise BadValue(f"expected an integer, got {type(value).__name__}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise BadValue("expected a number, got a boolean")
    if isinstance(value, (int, float, Decimal)):
        try:
            return float(value)
        except OverflowError:   # an integer past 1.8e308
            raise BadValue("expected a number, got one too large for a double") from None
        except ValueError:      # Decimal('sNaN'): a signaling NaN has no float
            raise BadValue("expected a number, got a signaling NaN") from None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise BadValue("expected a number, got text that is not a number") from None
    raise BadValue(f"expected a number, got {type(value).__name__}")


def _to_decimal(value: Any) -> Decimal:
    if type(value) is str:  # the common case first: APIs send decimals as text to keep precision
        try:
            number = Decimal(value)  # Decimal itself ignores surrounding whitespace
        except InvalidOperation:
            raise BadValue("expected a decimal, got text that is not a number") from None
        if not number.is_finite():
            raise BadValue("expected a finite decimal, got a non-finite number")
        return number
    if isinstance(value, bool):
        raise BadValue("expected a decimal, got a boolean")
    if isinstance(value, (int, float, str, Decimal)):
        try:
            number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
        except InvalidOperation:
            raise BadValue("expected a decimal, got text that is not a number") from None
        if not number.is_finite():
            raise BadValue("expected a finite decimal, got a non-finite number")
        return number
    raise BadValue(f"expected a decimal, got {type(value).__name__}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise BadValue("expected a boolean (true/false, yes/no, 1/0)")


def _to_datetime(value: Any) -> datetime:
    """Aware values are converted to UTC; naive ones are taken as UTC (documented); numbers are Unix seconds."""
    if type(value) is str:
        try:
            result = datetime.fromisoformat(value)
        except ValueError:
            return _to_datetime_slow(value)
        zone = result.tzinfo
        if zone is UTC:   # "Z" and "+00:00" parse to this very object: nothing to convert
            return result
        return result.replace(tzinfo=UTC) if zone is None else result.astimezone(UTC)
    if type(value) is datetime:   # a SQL source's timestamptz: psycopg gives the session's zone, often UTC
        zone = value.tzinfo
        if zone is UTC:
            return value
        if zone in UTC_ZONES:   # the same instant: relabelled, cheaper than astimezone (docs/benchmarks.md)
            return value.replace(tzinfo=UTC)
    return _to_datetime_slow(value)


def _to_datetime_slow(value: Any) -> datetime:
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise BadValue("expected a datetime, got a non-finite number")
        return datetime.fromtimestamp(value, tz=UTC)
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadValue("expected an ISO 8601 datetime") from None
    else:
        raise BadValue(f"expected a datetime, got {type(value).__name__}")
    if result.tzinfo is None:
        return result.replace(tzinfo=UTC)
    return result.astimezone(UTC)


def _to_date(value: Any, zone: tzinfo = UTC) -> date:
    """An aware value takes its calendar date in `zone` (UTC unless the column says `timezone:`),
    whatever zone the source session or the API wrote it in; a naive one is taken as it is."""
    if isinstance(value, datetime):
        return value.date() if value.tzinfo is None else value.astimezone(zone).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 10:   # a datetime: its offset decides the date
            try:
                return _to_date(datetime.fromisoformat(text), zone)
            except ValueError:
                pass
        try:
            return date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
        except ValueError:
            raise BadValue("expected an ISO 8601 date (YYYY-MM-DD)") from None
    raise BadValue(f"expected a date, got {type(value).__name__}")


def _date_in(zone_name: str | None) -> Callable[[Any], date]:
    if zone_name is None:
        return _to_date
    zone = ZoneInfo(zone_name)
    return lambda value: _to_date(value, zone)


def _to_text(value: Any) -> str:
    """Text, numbers, dates, times and UUIDs as text; anything else (bytes above all, whose `str()`
    is Python's `b'...'`) is an error: a value is never stored as its Python repr."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=json_value)
        except TypeError as exc:
            raise BadValue(str(exc)) from None
    if isinstance(value, datetime):
        return _to_datetime(value).isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (int, float, Decimal, UUID)):   # bool is an int: True stays 'True'
        return str(value)
    if isinstance(value, BINARY_TYPES):
        raise BadValue("expected text, got binary data (declare the column type: binary)")
    raise BadValue(f"expected text, got {type(value).__name__}")


def json_value(value: Any) -> Any:
    """What a JSON column holds for a non-JSON value inside it (a PostgreSQL array of dates, a
    decimal in a JSON document): ISO 8601, exact decimal text, UUID text; anything else is refused."""
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    raise TypeError(f"a JSON value cannot hold {_kind(value)}")


def _kind(value: Any) -> str:
    return "binary data" if isinstance(value, BINARY_TYPES) else f"a {type(value).__name__}"


def _to_json(value: Any) -> Any:
    return value


def _to_binary(value: Any) -> bytes:
    """Bytes as the driver gives them (bytes, memoryview from psycopg, bytearray), or base64 text
    (how JSON, the chain's page blobs included, carries them)."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise BadValue("expected binary data or base64 text, got text that is not base64") from None
    raise BadValue(f"expected binary data, got {type(value).__name__}")


def converter_for(column: Column) -> Callable[[Any], Any]:
    if column.format is not None or column.unit is not None:
        if column.type == ColumnType.datetime:
            return datetime_reader(column.format, column.unit, _to_datetime)
        zone = ZoneInfo(column.timezone) if column.timezone else UTC
        return date_reader(column.format, column.unit, zone, _date_in(column.timezone))
    base = {
        ColumnType.integer: _to_int, ColumnType.bigint: _to_int, ColumnType.float: _to_float,
        ColumnType.decimal: _to_decimal, ColumnType.boolean: _to_bool, ColumnType.string: _to_text,
        ColumnType.text: _to_text, ColumnType.date: _date_in(column.timezone), ColumnType.datetime: _to_datetime,
        ColumnType.json: _to_json, ColumnType.binary: _to_binary,
    }[column.type]
    if column.type == ColumnType.string and column.length:
        limit = column.length

        def bounded(value: Any) -> str:
            text = value if type(value) is str else _to_text(value)
            if len(text) > limit:
                raise BadValue(f"expected at most {limit} characters, got {len(text)}")
            return text

        return bounded
    return base


# Values already of these Python types need no conversion: the common case skips a call per value.
_PASSTHROUGH: dict[ColumnType, type] = {
    ColumnType.integer: int, ColumnType.bigint: int, ColumnType.float: float, ColumnType.boolean: bool,
    ColumnType.string: str, ColumnType.text: str, ColumnType.binary: bytes, ColumnType.date: date,
}
# ... and these pass when they also hold a guard (shape_compile.GUARDS): the generated shaper only,
# since their converters return such a value unchanged. A SQL source gives them already typed.
_GUARDED: dict[ColumnType, tuple[type, str]] = {ColumnType.datetime: (datetime, "utc"),
                                                ColumnType.decimal: (Decimal, "finite")}


def passthrough_type(column: Column) -> type[Any] | None:
    if column.format is not None or column.unit is not None:   # a reader of text or numbers decides
        return None
    return _PASSTHROUGH.get(column.type)


def guarded_passthrough(column: Column) -> tuple[type[Any] | None, str | None]:
    """(type, guard) for the generated shaper: `passthrough_type`, or a guarded one."""
    if column.format is None and column.unit is None and column.type in _GUARDED:
        return _GUARDED[column.type]
    return passthrough_type(column), None


def passthrough_length(column: Column) -> int | None:
    """The longest string that may pass unconverted (None: any length)."""
    return column.length if column.type == ColumnType.string else None


class RecordShaper:
    """Raw dict -> typed dict keyed by column name, in declared column order."""

    def __init__(self, source: str, model: str, columns: dict[str, Column], primary_key: list[str],
                 children: tuple[ChildTable, ...] = ()):
        self.source, self.model = source, model
        # A plain key is read with dict.get directly; only dotted paths pay for a getter call.
        self._columns = [(name, None if "." in (col.path or name) else (col.path or name),
                          compile_path(col.path or name), converter_for(col), col.on_error == "null",
                          passthrough_type(col), col.type == ColumnType.json, passthrough_length(col))
                         for name, col in columns.items()]
        plans = [ColumnPlan(name, key, get, convert, same_type, keep, max_len, two_part_path(columns[name].path),
                            guard)
                 for name, key, get, convert, _, _, keep, max_len in self._columns
                 for same_type, guard in [guarded_passthrough(columns[name])]]
        # The hot path: the same steps as `shape_each`, generated straight-line (see shape_compile).
        self.shape: Callable[[Any, int], dict[str, Any]] = compile_shape(plans, self.shape_each, BadValue)
        if children:   # nested lists: their items beside the record's columns (child_shape.py)
            from shared.extract.child_shape import ChildShaper, with_children
            self.shape = with_children(self.shape, ChildShaper(source, model, children))

    def shape_each(self, raw: Any, position: int) -> dict[str, Any]:
        """The reference shaping, column by column; `shape` falls back to it for any record that
        does not convert cleanly, so errors and `on_error: null` are decided here only."""
        if not isinstance(raw, dict):
            raise ConversionError(f"{self.source}.{self.model}: record #{position} is a {type(raw).__name__}, "
                                  "expected an object")
        out: dict[str, Any] = {}
        raw_get = raw.get
        for name, key, get, convert, null_on_error, same_type, keep, max_len in self._columns:
            value = raw_get(key) if key is not None else get(raw)
            if value is None or keep or (type(value) is same_type and (max_len is None or len(value) <= max_len)):
                out[name] = value
                continue
            try:
                out[name] = convert(value)
            except BadValue as exc:
                if null_on_error:
                    out[name] = None
                    continue
                raise ConversionError(
                    f"{self.source}.{self.model}: record #{position}, column '{name}': {exc}"
                    " (set on_error: null on the column to load NULL instead)") from None
        return out
