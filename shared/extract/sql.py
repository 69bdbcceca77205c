"""SQL connector: a table or a query read in chunks with SQLAlchemy Core.

With a primary key, chunks use keyset pagination (`WHERE key > last ORDER BY key LIMIT n`), so
memory is bounded by a chunk and any chunk can be re-read from its lower bound. Without one, a
single streamed query is read `chunk_size` rows at a time.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.config.models import SqlModel, SqlSource
from shared.config.project import ModelRef
from shared.detect.redact_message import safe_excerpt
from shared.errors import ExtractError
from shared.extract.base import GenericExtractor, RawPage
from shared.extract.source_engines import source_engine
from shared.extract.sql_incremental import changed_since, chunk_checkpoint
from shared.pii.stripper import PiiStripper


def source_columns(model: SqlModel) -> list[str]:
    """The source columns a model reads: the first part of each column's path, in order."""
    seen: dict[str, None] = {}
    for name, column in [*model.columns.items(), *model.tables.items()]:   # a child table's list too
        seen.setdefault((column.path or name).split(".")[0], None)
    return list(seen)


@contextmanager
def read_only(connection: sa.Connection) -> Iterator[None]:
    """Read inside a read-only transaction where the dialect has one, so the source is never
    written whatever a `query:` calls (validation already refuses anything but a SELECT):
    PostgreSQL `SET TRANSACTION READ ONLY`, MySQL/MariaDB `START TRANSACTION READ ONLY`, SQLite
    `PRAGMA query_only` (per connection, so set back before the pool takes it again). SQL Server
    has no read-only transaction; there the account's grants are the guard (docs)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")   # the first statement of the transaction
    elif dialect in ("mysql", "mariadb"):
        connection.exec_driver_sql("START TRANSACTION READ ONLY")
    elif dialect == "sqlite":
        connection.exec_driver_sql("PRAGMA query_only = ON")
    try:
        yield
    finally:
        if dialect == "sqlite" and not connection.closed and not connection.invalidated:
            connection.exec_driver_sql("PRAGMA query_only = OFF")


def _first_line(exc: BaseException) -> str:
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0].split("DETAIL")[0] if lines else ""


def keyset_after(columns: list[sa.ColumnElement], last: tuple) -> sa.ColumnElement:
    """`(a, b) > (x, y)` spelled with AND/OR, since SQL Server has no row-value comparison."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == last[j] for j in range(i)]
        clauses.append(sa.and_(*equal, column > last[i]))
    return sa.or_(*clauses)


def as_dicts(result: sa.CursorResult) -> list[dict[str, Any]]:
    """Every row of `result` as a dict: fetched at once and zipped with the keys read once, unlike
    `dict(row._mapping)` per row, which fetches one by one and builds keys each time (docs/benchmarks.md)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result.fetchall()]


class SqlExtractor(GenericExtractor):
    def __init__(self, ref: ModelRef, stripper: PiiStripper, limit: int | None = None, engine: Engine | None = None,
                 after: tuple | None = None, *, scan_process: bool = False):
        """`after`: start after this primary key (a page's `resume_after`), to re-read from a chunk on."""
        super().__init__(ref, stripper, limit, scan_process=scan_process)
        self.after = after
        source, model = ref.source, ref.model
        if not isinstance(source, SqlSource) or not isinstance(model, SqlModel):
            raise ExtractError(f"{ref.qualified}: not a model of a SQL source")
        self.source: SqlSource = source
        self.model: SqlModel = model
        self._own_engine = engine is None
        self.engine = engine or source_engine(self.source.url)

    def close(self) -> None:
        if self._own_engine:
            self.engine.dispose()

    def selectable(self, connection: sa.Connection) -> sa.FromClause:
        wanted = source_columns(self.model)
        if self.model.incremental is not None and self.model.incremental.column not in wanted:
            wanted.append(self.model.incremental.column)   # read to order and bound by, not loaded
        if self.model.query is not None:
            return sa.text(self.model.query).columns(*[sa.column(c) for c in wanted]).subquery("kspyder_source")
        if self.model.table is None:   # validation requires table or query
            raise ExtractError(f"{self.ref.qualified}: the model names neither a table nor a query")
        schema, _, name = self.model.table.rpartition(".")
        try:   # the columns only: a full reflection also reads keys, indexes and every table a foreign key names
            reflected = sa.inspect(connection).get_columns(name, schema=schema or None)
        except sa.exc.NoSuchTableError:
            raise ExtractError(f"{self.ref.qualified}: table '{self.model.table}' not found in the source "
                               "database") from None
        # typed as reflected, so that values come back as a full reflection would give them (SQLite decimals, dates)
        table = sa.Table(name, sa.MetaData(), *[sa.Column(c["name"], c["type"]) for c in reflected],
                         schema=schema or None)
        missing = [c for c in wanted if c not in table.c]
        if missing:
            raise ExtractError(f"{self.ref.qualified}: table '{self.model.table}' has no column(s) "
                               f"{', '.join(missing)} (it has: {', '.join(table.c.keys())})")
        return sa.select(*[table.c[c] for c in wanted]).subquery("kspyder_source")

    def raw_pages(self) -> Iterator[RawPage]:
        with self._reading() as (connection, source, key_names):
            if key_names:
                last = self.after
                while True:
                    page, last = self._chunk(connection, source, key_names, last)
                    if page is not None:
                        yield page
                    if last is None:
                        return
            else:
                yield from self._streamed(connection, source)

    def chunk(self, after: tuple | None) -> tuple[RawPage | None, tuple | None]:
        """One keyset chunk, the step a queue-chain Fetch takes (`raw_pages` loops over the same):
        the rows after `after` (None: the first chunk) and the bound the next chunk starts after
        (None: this was the last)."""
        with self._reading() as (connection, source, key_names):
            return self._chunk(connection, source, key_names, after)

    @contextmanager
    def _reading(self) -> Iterator[tuple[sa.Connection, sa.FromClause, list[str]]]:
        """A read-only connection, the model's selectable and its key columns; a database failure
        as an `ExtractError` carrying the driver's first line, scrubbed (it may quote a value)."""
        try:
            with self.engine.connect() as connection, read_only(connection):
                source = self.selectable(connection)
                yield connection, source, [(self.model.columns[k].path or k) for k in self.model.primary_key]
        except sa.exc.SQLAlchemyError as exc:
            raise ExtractError(f"{self.ref.qualified}: the source database failed: {type(exc).__name__}: "
                               f"{safe_excerpt(_first_line(exc), 200)}") from None

    def _chunk(self, connection: sa.Connection, source: sa.FromClause, key_names: list[str],
               after: tuple | None) -> tuple[RawPage | None, tuple | None]:
        incremental = self.model.incremental
        if incremental is not None:   # ordered by the cursor, then the key: a chunk ends at a bound
            key_names = [incremental.column, *key_names]
        keys: list[sa.ColumnElement[Any]] = [source.c[k] for k in key_names]
        size = self.model.chunk_size
        query = sa.select(source).order_by(*keys).limit(size)
        if incremental is not None:
            query = query.where(*changed_since(source.c[incremental.column], self.committed, incremental,
                                               connection.dialect.name, self.ref.qualified))
        if after is not None:
            query = query.where(keyset_after(keys, after))
        rows = as_dicts(connection.execute(query))
        if not rows:
            return None, None
        following = tuple(rows[-1][k] for k in key_names) if len(rows) >= size else None
        checkpoint = None if incremental is None else chunk_checkpoint(
            [row[incremental.column] for row in rows], last=following is None, where=self.ref.qualified)
        return RawPage(rows, resume_after=after, checkpoint=checkpoint), following

    def _streamed(self, connection: sa.Connection, source: sa.FromClause) -> Iterator[RawPage]:
        streaming = connection.execution_options(stream_results=True, yield_per=self.model.chunk_size)
        result = streaming.execute(sa.select(source))
        keys = list(result.keys())
        for partition in result.partitions():
            yield RawPage([dict(zip(keys, row, strict=True)) for row in partition])
