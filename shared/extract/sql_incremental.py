"""An incremental SQL model's filter and cursors: `WHERE column > last - lag`, chunks ordered by
(column, key), and the cursor a chunk may commit.

A chunk ends inside a run of equal cursor values as often as not, so the cursor committed with a
chunk is the highest value strictly below its last one (every row up to it has been read); the last
chunk commits its last value. A rerun reads from there with `>`, so it never skips a row.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared.config.incremental import SqlIncremental
from shared.extract.cursor import Cursor, read_cursor


def changed_since(column: sa.ColumnElement[Any], committed: Cursor | None, spec: SqlIncremental, dialect: str,
                  qualified: str) -> list[sa.ColumnElement[bool]]:
    """The WHERE clauses of an incremental read: rows with a cursor, above the committed one less
    `lag` (at or above `initial_value` on the first run)."""
    clauses: list[sa.ColumnElement[bool]] = [column.is_not(None)]
    if committed is not None:
        clauses.append(column > _bound(committed.minus(spec.lag), column, dialect))
    elif spec.initial_value is not None:
        initial = read_cursor(spec.initial_value, None, f"{qualified}: incremental.initial_value")
        if initial is not None:
            clauses.append(column >= _bound(initial, column, dialect))
    return clauses


def _bound(cursor: Cursor, column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The cursor as the source compares it: an aware instant for PostgreSQL, naive UTC elsewhere
    (SQLite and MariaDB keep no offset); SQLite text in SQLAlchemy's own stored form when the column's
    type is unknown (a `query:` column)."""
    value: Any = cursor.value
    if isinstance(value, datetime):
        if dialect != "postgresql":
            value = value.replace(tzinfo=None)
        if dialect == "sqlite" and isinstance(column.type, sa.types.NullType):
            return sa.literal(value.isoformat(" ", "microseconds"))
        return sa.literal(value, type_=column.type if not isinstance(column.type, sa.types.NullType) else None)
    integral = value == value.to_integral_value()
    return sa.literal(int(value) if integral else value)


def chunk_checkpoint(values: list[Any], *, last: bool, where: str) -> Cursor | None:
    """The cursor a chunk, read in cursor order, commits once it and the chunks before it are loaded."""
    if not values:
        return None
    last_value = read_cursor(values[-1], None, f"{where}: the cursor of the chunk's last row")
    if last or last_value is None:
        return last_value
    for value in reversed(values):
        cursor = read_cursor(value, last_value.kind, f"{where}: the cursor of a row")
        if cursor is not None and cursor < last_value:
            return cursor
    return None
