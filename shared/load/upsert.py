"""How one batch of rows reaches the target table, per dialect: the bulk upsert statements.

With `dialects.py`, this is the only module that holds dialect-specific code; the loader above it
is portable. Every writer takes rows as tuples in the table's column order, already checked and
converted by `fit.RowFitter` (datetimes in UTC, JSON as text), without two rows of the same key,
and writes them on the connection it is given, inside the caller's transaction.

- PostgreSQL: COPY into a temporary table, then one INSERT ... SELECT ... ON CONFLICT DO UPDATE.
  COPY is several times faster than any executemany, and the single statement keeps the
  upsert atomic and set-based. Without a key, COPY straight into the table.
- SQLite: INSERT ... ON CONFLICT DO UPDATE, compiled once and run by sqlite3's executemany.
- MariaDB/MySQL: INSERT ... ON DUPLICATE KEY UPDATE, executemany (PyMySQL folds it into
  multi-row statements).
- SQL Server: MERGE ... USING (VALUES (?, ...)) AS src, executemany. Not tested against a
  server (none here): only its compiled form is. Multi-row VALUES would hit SQL Server's
  2100-parameter limit; one row per execution lets pyodbc's fast_executemany send arrays instead.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from shared.target.columns import META_COLUMNS
from shared.target.dialects import MSSQL, MYSQL, POSTGRESQL, SQLITE, before_driver_statement

STAGING_TABLE = "_kspyder_batch"


class BatchWriter(Protocol):
    def bind_columns(self, columns: list[Sequence]) -> list[Sequence]:
        """A batch's fitted columns (table order) in the form the driver binds, still in table order:
        done while the batch is columnar, so that each column's conversion runs once per column."""
        ...

    def write(self, connection: sa.Connection, rows: list[tuple]) -> None: ...


def bound_as_fitted(columns: list[Sequence]) -> list[Sequence]:
    """`bind_columns` of the writers whose drivers take fitted values as they are."""
    return columns


def json_as_text(table: sa.Table) -> sa.Table:
    """The table as the writers bind it: JSON columns take the text `fit.json_fit` serialized.

    Serializing once in the fit step catches NaN inside JSON everywhere, and stores None as SQL
    NULL (sa.JSON would store the JSON text 'null' through executemany).
    """
    columns = [sa.Column(c.name, sa.Text() if isinstance(c.type, sa.JSON) else c.type, primary_key=c.primary_key)
               for c in table.columns]
    return sa.Table(table.name, sa.MetaData(), *columns, schema=table.schema)


class ExecuteMany:
    """One statement, executed with one parameter set per row."""

    def __init__(self, statement: sa.Executable, names: list[str]):
        self.statement, self.names = statement, names

    bind_columns = staticmethod(bound_as_fitted)

    def write(self, connection: sa.Connection, rows: list[tuple]) -> None:
        names = self.names
        connection.execute(self.statement, [dict(zip(names, row, strict=True)) for row in rows])


class SqliteExecuteMany:
    """The same upsert, compiled once and run by sqlite3's own `executemany`: SQLAlchemy's
    per-row parameter handling costs more than the insert itself on SQLite (docs/benchmarks.md). Values go
    through the columns' own bind processors (dates as SQLAlchemy stores them, decimals), so the
    stored form is exactly what `ExecuteMany` would write; column by column (`bind_columns`),
    since a batch's rows all need the same ones (`bulk_processor`)."""

    def __init__(self, statement: sa.Insert | MssqlMerge, table: sa.Table, dialect: sa.Dialect):
        compiled = statement.compile(dialect=dialect)
        names = [c.name for c in table.columns]
        self.sql = str(compiled)
        # rows are bound in table order, as an INSERT compiles
        if not isinstance(compiled, SQLCompiler) or list(compiled.positiontup or ()) != names:
            raise ValueError(f"the upsert of {table.name} binds its columns out of table order")
        self.processors = [c.type._cached_bind_processor(dialect) for c in table.columns]
        self.plan = [(bulk_processor(c.type, process, dialect), c.name in META_COLUMNS)
                     for c, process in zip(table.columns, self.processors, strict=True)]

    def bind_columns(self, columns: list[Sequence]) -> list[Sequence]:
        return [column if process is None else _once(process, column) if meta else process(column)
                for column, (process, meta) in zip(columns, self.plan, strict=True)]

    def write(self, connection: sa.Connection, rows: list[tuple]) -> None:
        before_driver_statement(connection, self.sql)   # a SQLite target past 10 schemas: attach this one
        cursor = _driver_cursor(connection)
        try:
            cursor.executemany(self.sql, rows)
        finally:
            cursor.close()


BulkProcessor = Callable[[Sequence[Any]], list[Any]]


def _driver_cursor(connection: sa.Connection) -> Any:
    """The driver's own cursor on this very connection: same transaction as the statements around it."""
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("the target connection was closed before its batch was written")
    return driver.cursor()


def _once(process: BulkProcessor, values: Sequence) -> list | Sequence:
    """A load metadata column holds one value per batch (`Loader`: run id, load time): converted
    once, not once per row; any other column content goes through `process` as usual."""
    if not values:
        return values
    first = values[0]
    if values.count(first) != len(values):
        return process(values)
    return process((first,)) * len(values)
# SQLAlchemy's SQLite DATETIME stores this text by default; `datetime.isoformat(" ", "microseconds")`
# writes the same for naive values (and, cut at 26 characters, for aware ones, whose offset the
# processor ignores too), several times faster than its `%` formatting of a dict per value.
SQLITE_DATETIME_FORMAT = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"


def bulk_processor(column_type: sa.types.TypeEngine, process: Callable[[Any], Any] | None,
                   dialect: sa.Dialect) -> BulkProcessor | None:
    """A column's bind processor applied to a whole column of a batch (None: values bind as they are)."""
    if process is None:
        return None
    impl = column_type.dialect_impl(dialect)
    if dialect.name == SQLITE and _sqlite_datetime(impl):
        iso = datetime.isoformat

        def datetimes(values: Sequence[Any]) -> list[Any]:
            # only datetimes reach a datetime column (fit.datetime_fit); anything else binds as SQLAlchemy would
            return [v if v is None else iso(v, " ", "microseconds")[:26] if type(v) is datetime else process(v)
                    for v in values]
        return datetimes

    def each(values: Sequence[Any]) -> list[Any]:
        return [v if v is None else process(v) for v in values]
    return each


class PostgresCopy:
    """COPY the batch into a temporary table dropped at commit, then merge it in one statement.

    Binary COPY with declared types: faster than text (docs/benchmarks.md), and safe because every value
    has already been fitted to exactly its column's Python type (int4 gets an int in range, a
    timestamptz an aware datetime, JSON its text, which PostgreSQL's json input reads as is).
    """

    def __init__(self, table: sa.Table, key: list[str], dialect: sa.Dialect):
        self.names = [c.name for c in table.columns]
        written = json_as_text(table)
        if key:
            self.staging: sa.Table | None = sa.Table(
                STAGING_TABLE, sa.MetaData(), *[sa.Column(c.name, c.type) for c in written.columns],
                prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
            self.merge = postgres_merge(table, self.staging, key)
            copy_target = self.staging
        else:
            self.staging = None   # nothing to merge: straight into the table
            copy_target = written
        self.types = copy_types(written, dialect)
        self.sql = copy_sql(copy_target, self.names, dialect, binary=self.types is not None)

    bind_columns = staticmethod(bound_as_fitted)

    def write(self, connection: sa.Connection, rows: list[tuple]) -> None:
        if self.staging is not None:
            self.staging.create(connection)
        cursor = _driver_cursor(connection)   # raw psycopg: same transaction as the statements around it
        try:
            with cursor.copy(self.sql) as copy:
                if self.types is not None:
                    copy.set_types(self.types)
                write_row = copy.write_row
                for row in rows:
                    write_row(row)
        finally:
            cursor.close()
        if self.staging is not None:
            connection.execute(self.merge)


# Binary COPY needs the exact type of each column; any other type falls back to text COPY.
COPY_TYPES = {"INTEGER": "int4", "BIGINT": "int8", "DOUBLE PRECISION": "float8", "NUMERIC": "numeric",
              "BOOLEAN": "bool", "VARCHAR": "text", "TEXT": "text", "DATE": "date",
              "TIMESTAMP WITH TIME ZONE": "timestamptz", "BYTEA": "bytea"}


def copy_types(table: sa.Table, dialect: sa.Dialect) -> list[str] | None:
    names = []
    for column in table.columns:
        ddl = column.type.compile(dialect=dialect).split("(")[0].strip()
        if ddl not in COPY_TYPES:
            return None
        names.append(COPY_TYPES[ddl])
    return names


def copy_sql(table: sa.Table, names: list[str], dialect: sa.Dialect, binary: bool) -> str:
    """Identifiers only (validated names, quoted by the dialect): no value is ever in the text."""
    quote = dialect.identifier_preparer
    columns = ", ".join(quote.quote(name) for name in names)
    return f"COPY {quote.format_table(table)} ({columns}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")


def non_key(table: sa.Table, key: list[str]) -> list[str]:
    """The columns an upsert overwrites: all but the key (never empty: the load metadata columns)."""
    return [c.name for c in table.columns if c.name not in key]


def _sqlite_datetime(impl: sa.types.TypeEngine) -> bool:
    from sqlalchemy.dialects import sqlite  # each dialect's module is imported by its own target only

    return isinstance(impl, sqlite.DATETIME) and getattr(impl, "_storage_format", None) == SQLITE_DATETIME_FORMAT


def postgres_merge(table: sa.Table, staging: sa.Table, key: list[str]) -> sa.Executable:
    """JSON arrives as text in the staging table: cast back to the column's type."""
    source = sa.select(*[sa.cast(staging.c[c.name], c.type) if isinstance(c.type, sa.JSON) else staging.c[c.name]
                         for c in table.columns])
    from sqlalchemy.dialects import postgresql  # each dialect's module is imported by its own target only

    statement = postgresql.insert(table).from_select([c.name for c in table.columns], source)
    return statement.on_conflict_do_update(index_elements=key,
                                           set_={n: statement.excluded[n] for n in non_key(table, key)})


def postgres_upsert(table: sa.Table, key: list[str]) -> sa.Insert:
    from sqlalchemy.dialects import postgresql  # each dialect's module is imported by its own target only

    statement = postgresql.insert(table)
    return statement.on_conflict_do_update(index_elements=key,
                                           set_={n: statement.excluded[n] for n in non_key(table, key)})


def sqlite_upsert(table: sa.Table, key: list[str]) -> sa.Insert:
    from sqlalchemy.dialects import sqlite  # each dialect's module is imported by its own target only

    statement = sqlite.insert(table)
    return statement.on_conflict_do_update(index_elements=key,
                                           set_={n: statement.excluded[n] for n in non_key(table, key)})


def mysql_upsert(table: sa.Table, key: list[str]) -> sa.Insert:
    from sqlalchemy.dialects import mysql  # each dialect's module is imported by its own target only

    statement = mysql.insert(table)
    return statement.on_duplicate_key_update({n: statement.inserted[n] for n in non_key(table, key)})


class MssqlMerge(Executable, ClauseElement):
    """MERGE of one row given as bound parameters named after the columns (SQLAlchemy has no MERGE)."""

    inherit_cache = False   # compiled once per batch; not worth a cache key

    def __init__(self, table: sa.Table, key: list[str]):
        self.table, self.key = table, key


@compiles(MssqlMerge, MSSQL)
def _compile_mssql_merge(element: MssqlMerge, compiler: SQLCompiler, **kw: Any) -> str:
    quote = compiler.preparer.quote
    table = element.table
    names = [c.name for c in table.columns]
    params = ", ".join(compiler.process(sa.bindparam(c.name, type_=c.type), **kw) for c in table.columns)
    columns = ", ".join(quote(n) for n in names)
    matches = " AND ".join(f"tgt.{quote(k)} = src.{quote(k)}" for k in element.key)
    updates = ", ".join(f"tgt.{quote(n)} = src.{quote(n)}" for n in non_key(table, element.key))
    inserted = ", ".join(f"src.{quote(n)}" for n in names)
    # HOLDLOCK: without it two concurrent MERGEs of a new key can both take the INSERT branch.
    # Identifiers quoted by the dialect; the values are bind parameters.
    return (f"MERGE INTO {compiler.preparer.format_table(table)} WITH (HOLDLOCK) AS tgt "  # noqa: S608
            f"USING (VALUES ({params})) AS src ({columns}) ON {matches} "
            f"WHEN MATCHED THEN UPDATE SET {updates} "
            f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({inserted});")


def upsert_statement(table: sa.Table, key: list[str], dialect: str) -> sa.Insert | MssqlMerge:
    """The executemany statement for `dialect`; a plain INSERT when the model has no key."""
    if not key:
        return sa.insert(table)
    if dialect == SQLITE:
        return sqlite_upsert(table, key)
    if dialect == MYSQL:
        return mysql_upsert(table, key)
    if dialect == MSSQL:
        return MssqlMerge(table, key)
    if dialect == POSTGRESQL:
        return postgres_upsert(table, key)
    raise ValueError(f"no upsert statement for the {dialect} dialect")


def batch_writer(table: sa.Table, key: list[str], dialect: sa.Dialect) -> BatchWriter:
    """COPY needs psycopg 3; another PostgreSQL driver gets the portable executemany upsert."""
    if dialect.name == POSTGRESQL and dialect.driver == "psycopg":
        return PostgresCopy(table, key, dialect)
    written = json_as_text(table)
    if dialect.name == SQLITE and dialect.driver == "pysqlite":
        return SqliteExecuteMany(upsert_statement(written, key, dialect.name), written, dialect)
    return ExecuteMany(upsert_statement(written, key, dialect.name), [c.name for c in written.columns])
