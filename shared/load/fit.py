"""Does a value fit its column? Checked in Python, before anything is written.

Databases disagree on a value that does not fit: PostgreSQL rounds a decimal with too many places,
SQLite stores 300 characters in a VARCHAR(200), MariaDB may truncate with a warning, SQL Server
rejects NaN. Checking here makes every target behave the same way, and lets the error name the
model, the record's key and the column instead of a driver message that may quote the value.
Messages never contain the value, only what was expected.

Per-record Python work is the main cost of a load, so a batch is checked column by column: a
column's values are gathered once and checked with a few passes of C-level builtins (`set(map(type,
...))`, `min`, `max`, `map(len, ...)`). Only a column that fails that fast check is walked value by
value, with the exact per-value check, to find (and report or null) the culprits. The fast check
may be stricter than the exact one (1.500 in a scale-2 column goes the slow way, and fits), never
looser. Checks are compiled once per table from its stored columns (`tables.desired_columns`).

A value that fits is returned in the form every writer binds: datetimes in UTC (naive where the
database keeps no offset), decimals as Decimal, JSON serialized to text (see `upsert.json_as_text`),
binary as bytes. A value of a type its column does not take is a misfit, never its `str()`.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Context, Decimal
from functools import partial
from itertools import repeat
from operator import attrgetter, is_not, itemgetter
from typing import Any

from shared.config.models import ColumnType
from shared.extract.records import json_value
from shared.load.json_text import encode_json_fast
from shared.target.columns import StoredColumn

INT32 = (-2**31, 2**31 - 1)
INT64 = (-2**63, 2**63 - 1)
UTC = UTC
NoneType = type(None)
NOT_FINITE = "not a finite number (NaN and infinity are not portable: SQL Server, MariaDB and Power BI reject them)"
JSON_TYPES = (dict, list, str, int, float)
# Wide enough to quantize any DECIMAL(38, s) value that passed the digits check without rounding.
WIDE = Context(prec=80)

Fit = Callable[[Any], Any]                          # one non-null value -> written form, or Misfit
BulkFit = Callable[[Sequence[Any]], "Sequence[Any] | None"]   # a column -> written forms, or None: value by value
not_none = partial(is_not, None)
zone_of = attrgetter("tzinfo")
encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=json_value).encode


class Misfit(ValueError):
    """Why a value does not fit its column; the message never contains the value."""


class RecordMisfit(ValueError):
    """A record that cannot be written; `index` is its position in the batch. `nullable`: the
    column could take `on_error: null` instead (a key column cannot)."""

    def __init__(self, column: str, reason: str, index: int, nullable: bool = True):
        self.column, self.reason, self.index, self.nullable = column, reason, index, nullable
        super().__init__(f"column '{column}': {reason}")


def _wrong_type(expected: str, value: Any) -> Misfit:
    return Misfit(f"expected {expected}, got {type(value).__name__}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _types(values: Sequence[Any]) -> set[type]:
    found = set(map(type, values))
    found.discard(NoneType)
    return found


# ---------------------------------------------------------------- integers
def integer_fit(bounds: tuple[int, int], label: str) -> tuple[Fit, BulkFit]:
    low, high = bounds
    outside = f"value outside the {label} range"

    def fit(value: Any) -> int:
        if not _is_int(value):
            raise _wrong_type("an integer", value)
        if low <= value <= high:
            return int(value)
        raise Misfit(outside)

    def bulk(values: Sequence[Any]) -> Sequence[Any] | None:
        types = _types(values)
        if not types:
            return values
        if types != {int}:
            return None
        present = list(filter(not_none, values))
        return values if low <= min(present) and max(present) <= high else None

    return fit, bulk


# ---------------------------------------------------------------- floats
def float_fit(value: Any) -> float:
    if not (_is_int(value) or isinstance(value, float)):
        raise _wrong_type("a number", value)
    try:
        number = float(value)
    except OverflowError:
        raise Misfit("value outside the range of a double") from None
    if not math.isfinite(number):
        raise Misfit(NOT_FINITE)
    return number


def float_bulk(values: Sequence[Any]) -> Sequence[Any] | None:
    types = _types(values)
    if not types:
        return values
    if types != {float}:
        return None
    return values if all(map(math.isfinite, filter(not_none, values))) else None


# ---------------------------------------------------------------- decimals
def decimal_fit(precision: int, scale: int) -> tuple[Fit, BulkFit]:
    """Too many decimal places is an error, not a rounding: a loader must not change amounts."""
    bound = Decimal(10) ** (precision - scale)
    quantum = Decimal(1).scaleb(-scale)
    label = f"DECIMAL({precision},{scale})"
    too_big = f"more than {precision - scale} digits before the decimal point ({label})"
    too_precise = f"more than {scale} decimal places ({label})"

    def fit(value: Any) -> Decimal:
        if isinstance(value, Decimal):
            amount = value
        elif _is_int(value):
            amount = Decimal(value)   # binary COPY's numeric wants a Decimal
        else:
            raise _wrong_type("a decimal", value)
        if not amount.is_finite():
            raise Misfit(NOT_FINITE)
        if not -bound < amount < bound:
            raise Misfit(too_big)
        if WIDE.quantize(amount, quantum) != amount:   # 1.500 fits a scale of 2: only rounding is refused
            raise Misfit(too_precise)
        return amount

    def bulk(values: Sequence[Any]) -> Sequence[Any] | None:
        types = _types(values)
        if not types:
            return values
        if types != {Decimal}:
            return None
        present = list(filter(not_none, values))
        if not all(map(Decimal.is_finite, present)) or not (-bound < min(present) and max(present) < bound):
            return None
        return values if list(map(WIDE.quantize, present, repeat(quantum))) == present else None

    return fit, bulk


# ---------------------------------------------------------------- text
def string_fit(length: int | None) -> tuple[Fit, BulkFit]:
    too_long = f"value longer than {length} characters"

    def fit(value: Any) -> str:
        if not isinstance(value, str):
            raise _wrong_type("text", value)
        if length is not None and len(value) > length:
            raise Misfit(too_long)
        return value

    def bulk(values: Sequence[Any]) -> Sequence[Any] | None:
        types = _types(values)
        if not types:
            return values
        if types != {str}:
            return None
        if length is None:
            return values
        try:
            longest = max(map(len, values))   # a column without NULLs skips the filter pass
        except TypeError:
            longest = max(map(len, filter(not_none, values)))
        return values if longest <= length else None

    return fit, bulk


# ---------------------------------------------------------------- booleans and dates
def exact_type_bulk(kind: type) -> BulkFit:
    def bulk(values: Sequence[Any]) -> Sequence[Any] | None:
        return values if _types(values) <= {kind} else None

    return bulk


def boolean_fit(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _wrong_type("a boolean", value)


def date_fit(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise _wrong_type("a date", value)


# ---------------------------------------------------------------- datetimes
def datetime_fit(naive: bool) -> tuple[Fit, BulkFit]:
    """Aware values are converted to UTC, naive ones taken as UTC (as the extractor does).

    `naive`: the database keeps no offset (SQLite, MariaDB), so UTC is written without one.
    """
    def fit(value: Any) -> datetime:
        if not isinstance(value, datetime):
            raise _wrong_type("a datetime", value)
        if value.tzinfo is None:
            return value if naive else value.replace(tzinfo=UTC)
        moment = value if value.tzinfo is UTC else value.astimezone(UTC)
        return moment.replace(tzinfo=None) if naive else moment

    def bulk(values: Sequence[Any]) -> Sequence[Any] | None:
        types = _types(values)
        if not types:
            return values
        if types != {datetime} or set(map(zone_of, filter(not_none, values))) != {UTC}:
            return None
        return _without_zone(values) if naive else values

    return fit, bulk


def _without_zone(values: Sequence[datetime | None]) -> list[datetime | None]:
    """combine(date, time) drops the zone several times faster than replace(tzinfo=None)."""
    combine, day, clock = datetime.combine, datetime.date, datetime.time
    return [None if v is None else combine(day(v), clock(v)) for v in values]


# ---------------------------------------------------------------- JSON
def json_fit(value: Any) -> str:
    """Serialized here, once: NaN anywhere inside is caught, and every writer binds text."""
    if not isinstance(value, JSON_TYPES):
        raise _wrong_type("JSON (object, array, text, number or boolean)", value)
    try:
        return encode_json(value)
    except TypeError as exc:   # json_value's refusal: binary data inside, or an object JSON has no form for
        raise Misfit(str(exc)) from None
    except ValueError:
        raise Misfit(f"JSON {NOT_FINITE}") from None


def json_bulk(values: Sequence[Any]) -> Sequence[Any] | None:
    if not _types(values) <= {dict, list}:
        return None
    encode = encode_json_fast
    try:
        return [None if v is None else encode(v) for v in values]
    except (ValueError, TypeError, RecursionError):
        return None


# ---------------------------------------------------------------- binary
def binary_fit(value: Any) -> bytes:
    """Bytes only: text in a binary column would be stored as its characters' encoding, silently."""
    if type(value) is bytes:
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise _wrong_type("binary data", value)


# ---------------------------------------------------------------- per column
def column_fit(column: StoredColumn, naive_datetimes: bool) -> tuple[Fit, BulkFit]:
    kind = column.type
    if kind == ColumnType.integer:
        return integer_fit(INT32, "32-bit integer")
    if kind == ColumnType.bigint:
        return integer_fit(INT64, "64-bit integer")
    if kind == ColumnType.float:
        return float_fit, float_bulk
    if kind == ColumnType.decimal:
        if column.precision is None or column.scale is None:
            raise ValueError(f"column {column.name}: a decimal column needs its precision and scale")
        return decimal_fit(column.precision, column.scale)
    if kind == ColumnType.boolean:
        return boolean_fit, exact_type_bulk(bool)
    if kind == ColumnType.string:
        return string_fit(column.length)
    if kind == ColumnType.text:
        return string_fit(None)
    if kind == ColumnType.date:
        return date_fit, exact_type_bulk(date)
    if kind == ColumnType.datetime:
        return datetime_fit(naive_datetimes)
    if kind == ColumnType.json:
        return json_fit, json_bulk
    if kind == ColumnType.binary:
        return binary_fit, exact_type_bulk(bytes)
    raise ValueError(f"no fit check for {kind}")


class ColumnFit:
    """One column's checks, and what to do with a value that fails them."""

    def __init__(self, column: StoredColumn, null_on_error: bool, naive_datetimes: bool):
        self.name, self.is_key = column.name, column.primary_key
        self.null_on_error = null_on_error and not column.primary_key   # a key never becomes NULL
        self.fit, self.bulk = column_fit(column, naive_datetimes)

    def values(self, values: Sequence[Any]) -> tuple[Sequence[Any], int]:
        """(written values, how many were nulled by on_error: null); RecordMisfit otherwise."""
        if self.is_key and None in values:
            raise RecordMisfit(self.name, "key column is null", values.index(None), nullable=False)
        fitted = self.bulk(values)
        return (fitted, 0) if fitted is not None else self._one_by_one(values)

    def _one_by_one(self, values: Sequence[Any]) -> tuple[list[Any], int]:
        fit, nulled = self.fit, 0
        out: list[Any] = []
        for index, value in enumerate(values):
            if value is None:
                out.append(None)
                continue
            try:
                out.append(fit(value))
            except Misfit as exc:
                if not self.null_on_error:
                    raise RecordMisfit(self.name, str(exc), index, nullable=not self.is_key) from None
                out.append(None)
                nulled += 1
        return out, nulled


class RowFitter:
    """A batch of record dicts -> rows (tuples in column order, `extra` values appended).

    Missing fields become None and extra fields are never read. A value that does not fit raises
    `RecordMisfit`, unless its column is in `null_on_error` (the manifest's `on_error: null`): then
    it becomes None and `nulled` counts it.
    """

    def __init__(self, columns: list[StoredColumn], null_on_error: set[str], naive_datetimes: bool):
        self.names = [c.name for c in columns]
        self.key = [c.name for c in columns if c.primary_key]
        self._columns = [ColumnFit(c, c.name in null_on_error, naive_datetimes) for c in columns]
        # one column's itemgetter returns the value, not a 1-tuple: such tables gather the `get` way
        self._row_of = itemgetter(*self.names) if len(self.names) > 1 else None
        self.nulled = 0

    def columns(self, records: list[dict[str, Any]]) -> list[Sequence]:
        """The batch's fitted values, one sequence per column, in column order."""
        columns: list[Sequence[Any]] = []
        nulled = 0
        for column, gathered in zip(self._columns, self._gather(records), strict=True):
            values, count = column.values(gathered)
            columns.append(values)
            nulled += count
        self.nulled += nulled   # only once the whole batch fits
        return columns

    def _gather(self, records: list[dict[str, Any]]) -> list[list] | list[tuple]:
        """The batch's values, column by column. Records that hold every column (the extractor's
        shaped records do) are read with one C-level `itemgetter` call each and transposed, faster
        than a `get` per value (docs/benchmarks.md); a record without some column sends the whole batch
        the `get` way, where a missing field reads as None."""
        if records and self._row_of is not None:
            try:
                return list(zip(*map(self._row_of, records), strict=True))
            except KeyError:
                pass
        return [[record.get(name) for record in records] for name in self.names]
