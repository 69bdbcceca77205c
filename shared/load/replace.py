"""Replace a whole table in the target from a DataFrame: for tables kspyder derives (transformation
outputs, aggregation results), which are expendable by design and rebuilt on every run.

The table's columns follow the frame's dtypes (`frame_columns`, also what `plan` shows for a
pipeline output), plus the two load metadata columns every kspyder table carries
(`_kspyder_run_id`, `_kspyder_loaded_at`): who wrote the table and when. Same-named columns in
the frame are overwritten by them: they describe this write, not the inputs'.

Atomicity: PostgreSQL and SQLite drop, create and fill the table in one transaction, so a reader
sees the old table or the new one, and a failure leaves the old one. MariaDB/MySQL commit DDL on
their own, so the new table is filled under a staging name and swapped in (`swap_in`, the one swap
of a filled staging table into place, which keyless models' loads use too); a failure drops the
staging table and leaves the old one.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from shared.config.models import ColumnType, check_identifier
from shared.load.loader import RUN_ID_LENGTH, summarize_database_error
from shared.load.staging import SWAP_PREFIXES, swap_in
from shared.target.columns import LOADED_AT, META_COLUMNS, RUN_ID, StoredColumn
from shared.target.dialects import MYSQL_FAMILY, SQLITE, column_type, create_schema, stores_timezones, table_options

INSERT_BATCH = 10_000   # rows per executemany: bounded memory for Python values, few round trips


class ReplaceError(Exception):
    """The table could not be replaced. Messages name the table and column, never a value."""


def dtype_column(name: str, dtype: object) -> StoredColumn:
    """The logical type a column of this dtype is stored as; strings and any other object column
    are text (non-string values are written as their text: JSON for dicts and lists)."""
    if pd.api.types.is_bool_dtype(dtype):
        return StoredColumn(name, ColumnType.boolean)
    if pd.api.types.is_integer_dtype(dtype):
        return StoredColumn(name, ColumnType.bigint)
    if pd.api.types.is_float_dtype(dtype):
        return StoredColumn(name, ColumnType.float)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return StoredColumn(name, ColumnType.datetime)
    if pd.api.types.is_timedelta64_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
        raise ReplaceError(f"column {name}: dtype {dtype} has no SQL type (cast it to a number or text)")
    return StoredColumn(name, ColumnType.text)


def frame_columns(frame: pd.DataFrame, what: str = "frame") -> list[StoredColumn]:
    """The stored columns of a frame, metadata columns last. Column names must be identifiers."""
    names = [c for c in frame.columns if c not in META_COLUMNS]
    problems = []
    for name in names:
        if not isinstance(name, str):
            problems.append(f"column {name!r} is not a name (rename it)")
            continue
        try:
            check_identifier(name, "column")
        except ValueError as exc:
            problems.append(str(exc))
    duplicates = sorted({str(n) for n in names if list(frame.columns).count(n) > 1})
    if duplicates:
        problems.append(f"duplicate columns: {', '.join(duplicates)}")
    if problems:
        raise ReplaceError(f"{what}: " + "; ".join(problems))
    columns = [dtype_column(name, frame[name].dtype) for name in names]
    return columns + [StoredColumn(RUN_ID, ColumnType.string, RUN_ID_LENGTH),
                      StoredColumn(LOADED_AT, ColumnType.datetime)]


def replace_table(engine: sa.Engine, schema: str, table: str, frame: pd.DataFrame, *, run_id: str | None = None) -> int:
    """Drop and recreate `schema.table` with the frame's rows; returns the number of rows written.

    SQLite engines must come from `create_target_engine(url, schemas=[schema, ...])`: a schema is an
    attached file there, attached when a connection opens.
    """
    for value, what in ((schema, "schema"), (table, "table")):
        try:
            check_identifier(value, what)
        except ValueError as exc:
            raise ReplaceError(str(exc)) from None
    qualified = f"{schema}.{table}"
    run_id = run_id or str(uuid.uuid4())
    if len(run_id) > RUN_ID_LENGTH:
        raise ReplaceError(f"{qualified}: run id must be at most {RUN_ID_LENGTH} characters")
    dialect = engine.dialect.name
    columns = frame_columns(frame, qualified)
    naive = not stores_timezones(dialect)
    rows = _batches(frame, columns, naive, run_id, _now(naive))
    try:
        if dialect in MYSQL_FAMILY:
            _swap_in(engine, schema, table, columns, rows)
        else:
            with engine.begin() as connection:
                if dialect == SQLITE:
                    _require_attached(connection, schema)
                create_schema(connection, schema)
                target = _table(table, schema, columns, dialect)
                target.drop(connection, checkfirst=True)
                target.create(connection)
                _insert(connection, target, rows)
    except sa.exc.DBAPIError as exc:
        raise ReplaceError(f"{qualified}: replacing the table failed: {summarize_database_error(exc)}") from None
    return len(frame)


def _swap_in(engine: sa.Engine, schema: str, table: str, columns: list[StoredColumn],
             rows: Iterator[list[dict]]) -> None:
    dialect = engine.dialect.name
    staging = _table(f"{SWAP_PREFIXES[0]}{uuid.uuid4().hex[:12]}", schema, columns, dialect)
    with engine.begin() as connection:
        create_schema(connection, schema)
        staging.create(connection)
    try:
        with engine.begin() as connection:
            _insert(connection, staging, rows)
        swap_in(engine, staging, sa.Table(table, sa.MetaData(), schema=schema))
    except BaseException:
        with engine.begin() as connection:
            staging.drop(connection, checkfirst=True)
        raise


def _table(name: str, schema: str, columns: list[StoredColumn], dialect: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), *[sa.Column(c.name, column_type(c, dialect), nullable=True) for c in columns],
                    schema=schema, **table_options(dialect))


def _require_attached(connection: sa.Connection, schema: str) -> None:
    attached = {row[1] for row in connection.exec_driver_sql("PRAGMA database_list")}
    if schema not in attached:
        raise ReplaceError(f"schema {schema} is not attached to this SQLite engine: create it with "
                           f"create_target_engine(url, schemas=[..., '{schema}'])")


def _insert(connection: sa.Connection, target: sa.Table, batches: Iterator[list[dict]]) -> None:
    for batch in batches:
        connection.execute(target.insert(), batch)


def _now(naive: bool) -> datetime:
    now = datetime.now(UTC)
    return now.replace(tzinfo=None) if naive else now


def _batches(frame: pd.DataFrame, columns: list[StoredColumn], naive: bool, run_id: str,
             loaded_at: datetime) -> Iterator[list[dict]]:
    """Rows of plain Python values (None for every kind of missing), INSERT_BATCH at a time and
    converted column-wise, so only one batch exists as Python objects at once."""
    names = [c.name for c in columns if c.name not in META_COLUMNS]
    meta = {RUN_ID: run_id, LOADED_AT: loaded_at}
    for start in range(0, len(frame), INSERT_BATCH):
        part = frame.iloc[start:start + INSERT_BATCH]
        if not names:
            yield [dict(meta) for _ in range(len(part))]
            continue
        values = [_python_values(part[c.name], c, naive) for c in columns if c.name not in META_COLUMNS]
        yield [dict(zip(names, row, strict=True), **meta) for row in zip(*values, strict=True)]


def _python_values(series: pd.Series, column: StoredColumn, naive: bool) -> list:
    missing = series.isna().to_numpy()
    if column.type == ColumnType.datetime:
        stamps = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
        if naive:
            stamps = stamps.dt.tz_localize(None)
        out = list(stamps.dt.to_pydatetime())
    elif column.type == ColumnType.text:
        out = series.astype(object).tolist()
        if any(isinstance(v, (bytes, bytearray, memoryview)) for v in out):   # never Python's b'...' text
            raise ReplaceError(f"column {column.name}: binary data has no text form: "
                               "leave the column out of the output")
        out = [_text(v) for v in out]
    elif column.type == ColumnType.bigint:
        out = series.astype(object).tolist()
        out = [None if m else int(v) for v, m in zip(out, missing, strict=True)]
        return out
    else:
        out = series.astype(object).tolist()
    return [None if m else v for v, m in zip(out, missing, strict=True)]


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)
