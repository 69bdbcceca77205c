"""The column types of frames inside a pipeline: one pandas dtype per logical column type.

Inputs are read into these dtypes and outputs are conformed to the columns the dry run inferred,
so the table a run writes is the table `plan` showed, whatever the data (a nullable integer
column stays an integer column even when a left join leaves holes in it).
"""
from __future__ import annotations

import json
from typing import Literal

import pandas as pd

from shared.config.models import ColumnType
from shared.load.replace import ReplaceError, dtype_column, frame_columns
from shared.target.columns import META_COLUMNS, StoredColumn

# decimals are computed as floats (documented); dates become midnight UTC datetimes
DTYPES: dict[ColumnType, str] = {
    ColumnType.integer: "Int64", ColumnType.bigint: "Int64", ColumnType.float: "float64",
    ColumnType.decimal: "float64", ColumnType.boolean: "boolean", ColumnType.string: "str",
    ColumnType.text: "str", ColumnType.json: "str", ColumnType.date: "datetime64[us, UTC]",
    ColumnType.datetime: "datetime64[us, UTC]", ColumnType.binary: "object",
}
# the names a `cast` step accepts, and the logical type each one means
CastType = Literal["integer", "bigint", "float", "decimal", "boolean", "string", "text", "datetime", "date"]
CAST_TYPES: dict[str, ColumnType] = {"integer": ColumnType.bigint, "bigint": ColumnType.bigint,
                                     "float": ColumnType.float, "decimal": ColumnType.float,
                                     "boolean": ColumnType.boolean, "string": ColumnType.text,
                                     "text": ColumnType.text, "datetime": ColumnType.datetime,
                                     "date": ColumnType.datetime}


class FrameError(ValueError):
    """A frame does not have the columns or types expected; names columns, never values."""


def data_columns(columns: list[StoredColumn]) -> list[StoredColumn]:
    return [c for c in columns if c.name not in META_COLUMNS]


def empty_frame(columns: list[StoredColumn]) -> pd.DataFrame:
    """A frame with no rows and the dtypes real data will have: what the dry run runs on."""
    return pd.DataFrame({c.name: pd.Series([], dtype=DTYPES[c.type]) for c in data_columns(columns)})


def typed(frame: pd.DataFrame, columns: list[StoredColumn]) -> pd.DataFrame:
    """Rows as read from the database (Python values) in the pipeline dtypes."""
    out = {}
    for column in data_columns(columns):
        out[column.name] = convert(frame[column.name], column.type, column.name)
    return pd.DataFrame(out, index=frame.index)


def convert(series: pd.Series, kind: ColumnType, name: str) -> pd.Series:
    """One column to the dtype of a logical type; FrameError names the column, not the value."""
    dtype = DTYPES[kind]
    try:
        if kind == ColumnType.json and series.dtype == object:
            series = series.map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v, default=str))
        if dtype.startswith("datetime"):
            if pd.api.types.is_datetime64_any_dtype(series.dtype):
                return series.dt.tz_localize("UTC").astype(dtype) if series.dt.tz is None else series.astype(dtype)
            return pd.to_datetime(series, utc=True, format="ISO8601").astype(dtype)   # text: ISO 8601 only
        if dtype == "Int64" and pd.api.types.is_float_dtype(series.dtype):
            return series.astype(dtype)   # refuses 1.5 rather than truncating it
        if dtype == "Int64" and series.dtype == object:
            return pd.to_numeric(series).astype(dtype)
        if dtype == "float64" and series.dtype == object:
            return pd.to_numeric(series.where(series.notna(), None)).astype(dtype)
        if dtype == "str" and series.dtype != "str":
            return series.astype(object).where(series.notna(), None).map(
                lambda v: v if v is None or isinstance(v, str) else str(v)).astype("str")
        return series.astype(dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise FrameError(f"column {name}: values do not fit {kind.value} ({type(exc).__name__})") from None


def describe(frame: pd.DataFrame) -> list[StoredColumn]:
    """Any intermediate frame's columns as logical types (names need not be identifiers yet)."""
    out = []
    for name in frame.columns:
        try:
            out.append(dtype_column(str(name), frame[name].dtype))
        except ReplaceError:
            out.append(StoredColumn(str(name), ColumnType.text))
    return out


def infer_columns(frame: pd.DataFrame, what: str) -> list[StoredColumn]:
    """The stored columns of a pipeline's result frame (load metadata columns last)."""
    try:
        return frame_columns(frame, what)
    except ReplaceError as exc:
        raise FrameError(str(exc).split(": ", 1)[-1]) from None


def conform(frame: pd.DataFrame, columns: list[StoredColumn], what: str) -> pd.DataFrame:
    """The frame with exactly the inferred columns, in order and dtype."""
    wanted = data_columns(columns)
    names = [c.name for c in wanted]
    present = [c for c in frame.columns if c not in META_COLUMNS]
    if present != names:
        missing = [n for n in names if n not in present]
        extra = [str(n) for n in present if n not in names]
        raise FrameError(f"{what}: the result's columns differ from the dry run's"
                         + (f" (missing: {', '.join(missing)})" if missing else "")
                         + (f" (unexpected: {', '.join(extra)})" if extra else ""))
    out = {}
    for column in wanted:
        series = frame[column.name]
        if dtype_column(column.name, series.dtype).type == column.type and str(series.dtype) == DTYPES[column.type]:
            out[column.name] = series
        else:
            out[column.name] = convert(series, column.type, f"{what}.{column.name}")
    return pd.DataFrame(out, index=frame.index)
