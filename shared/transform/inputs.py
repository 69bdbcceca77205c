"""Read a pipeline's inputs from the target database into frames with the pipeline dtypes.

Only the columns the dry run knows are selected (the load metadata columns describe the load,
not the data, and are left out), through a SQLAlchemy table built from those columns, so values
arrive as Python types every dialect agrees on.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from shared.load.loader import summarize_database_error
from shared.target.columns import StoredColumn
from shared.target.dialects import column_type
from shared.transform.frames import FrameError, data_columns, empty_frame, typed


class InputError(Exception):
    """An input cannot be read: the message names the table, never a value."""


def _select(connection: sa.Connection, qualified: str, columns: list[StoredColumn]) -> sa.Select:
    schema, table = qualified.split(".", 1)
    if not sa.inspect(connection).has_table(table, schema=schema):
        raise InputError(f"input {qualified} does not exist in the target (load it first: main.py apply, main.py run; "
                         f"or run the pipeline that writes it)")
    wanted = data_columns(columns)
    typed = [sa.Column(c.name, column_type(c, connection.dialect.name)) for c in wanted]
    source = sa.Table(table, sa.MetaData(), *typed, schema=schema)
    return sa.select(*source.c)


def read_table(connection: sa.Connection, qualified: str, columns: list[StoredColumn]) -> pd.DataFrame:
    return next(iter(read_chunks(connection, qualified, columns, None)))


def read_chunks(connection: sa.Connection, qualified: str, columns: list[StoredColumn],
                chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """The table in frames of at most `chunk_rows` rows (one frame when None), streamed from the
    server where the driver can; always at least one frame, empty for an empty table."""
    statement = _select(connection, qualified, columns)
    names = [c.name for c in data_columns(columns)]
    try:
        if chunk_rows is None:
            result = connection.execute(statement)
            batches: Iterable[Sequence[sa.Row[Any]]] = [result.fetchall()]
        else:
            result = connection.execution_options(stream_results=True, yield_per=chunk_rows).execute(statement)
            batches = result.partitions(chunk_rows)
        produced = False
        for rows in batches:
            produced = True
            yield _frame(rows, names, columns, qualified)
        if not produced:
            yield empty_frame(columns)
    except sa.exc.DBAPIError as exc:
        raise InputError(f"reading {qualified} failed: {summarize_database_error(exc)}") from None


def _frame(rows: Sequence[sa.Row[Any]], names: list[str], columns: list[StoredColumn], qualified: str) -> pd.DataFrame:
    if not rows:
        return empty_frame(columns)
    raw = pd.DataFrame.from_records(rows, columns=names, coerce_float=False)
    try:
        return typed(raw, columns)
    except FrameError as exc:
        raise InputError(f"input {qualified}: {exc}") from None


def query_reader(connection: sa.Connection) -> Callable[[str], pd.DataFrame]:
    """What `sql` steps run their query with: raw rows of the query on this connection."""
    from shared.config.sql_query import dialect_of, query_problem

    dialect = dialect_of(connection.dialect.name + "://")

    def run(query: str) -> pd.DataFrame:
        problem = query_problem(query, dialect)   # validation refused it already: a step built otherwise never runs
        if problem is not None:
            raise InputError(f"sql step not run: {problem}")
        try:
            result = connection.execute(sa.text(query))
            if not result.returns_rows:
                raise InputError("sql step query returned no rows: it must be one SELECT")
            return pd.DataFrame.from_records(result.fetchall(), columns=list(result.keys()), coerce_float=False)
        except sa.exc.DBAPIError as exc:
            raise InputError(f"sql step query failed: {summarize_database_error(exc)}") from None
    return run
