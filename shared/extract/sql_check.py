"""Check SQL sources against the manifests before anything is created: a model's `table:` missing
from the source, or a column whose `path` the table (or the `query:`'s result) lacks, would
otherwise show only in `run`, after `apply` made its target table. Every mismatch of every
source is reported at once, naming source, model and column, never a value. API sources are not
checked (only a request would tell).

Tables and views are read from the catalogue (SQLAlchemy's inspector); a query's result columns
from running it with `WHERE 1 = 0` around it (no row is read), inside the read-only transaction
the extractor uses.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared.config.models import SqlModel, SqlSource
from shared.config.project import ModelRef
from shared.detect.redact_message import safe_excerpt
from shared.extract.sql import read_only, source_columns


def sql_source_problems(refs: list[ModelRef]) -> list[str]:
    """One line per mismatch ("shop.orders: column total: ..."), for the SQL sources of `refs`."""
    by_source: dict[str, list[ModelRef]] = {}
    for ref in refs:
        if ref.source.type == "sql":
            by_source.setdefault(ref.source_name, []).append(ref)
    problems: list[str] = []
    for name, models in by_source.items():
        problems += _source_problems(name, models)
    return problems


def mismatch_message(problems: list[str], note: str = "") -> str:
    """The problems as one message: a summary line (with `note`), then one indented line each."""
    count = f"{len(problems)} problem{'' if len(problems) == 1 else 's'}"
    return f"the SQL sources do not match the manifests ({count}{note}):\n  " + "\n  ".join(problems)


def _source_problems(name: str, refs: list[ModelRef]) -> list[str]:
    url = cast(SqlSource, refs[0].source).url
    missing = _missing_sqlite_file(url)
    if missing:
        return [f"{name}: {missing}"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection, read_only(connection):
            problems: list[str] = []
            for ref in refs:
                problems += _model_problems(connection, ref)
            return problems
    except sa.exc.SQLAlchemyError as exc:
        return [f"{name}: cannot read the source database: {_driver_line(exc)}"]
    finally:
        engine.dispose()


def _missing_sqlite_file(url: str) -> str | None:
    """Connecting would create an empty SQLite file where the source was expected: say so instead."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.database.startswith("file:") or Path(parsed.database).exists():
        return None
    return "the source database file does not exist (check the source's url)"


def _model_problems(connection: sa.Connection, ref: ModelRef) -> list[str]:
    model = cast(SqlModel, ref.model)
    if model.query is not None:
        try:
            with connection.begin_nested():   # a failed query spoils no later model's check (PostgreSQL)
                found = _query_columns(connection, model.query)
        except sa.exc.SQLAlchemyError as exc:
            return [f"{ref.qualified}: the query fails on the source: {_driver_line(exc)}"]
        where = "the query's result"
    else:
        schema, _, table = (model.table or "").rpartition(".")
        inspector = sa.inspect(connection)
        if not _has_table(connection, inspector, table, schema or None):
            return [f"{ref.qualified}: table {model.table} does not exist in the source database"
                    + _did_you_mean(table, _tables(inspector, schema or None))]
        found = [c["name"] for c in inspector.get_columns(table, schema=schema or None)]
        where = f"table {model.table}"
    return [f"{ref.qualified}: column {column}: {where} has no column {path}{_did_you_mean(path, found)}"
            for column, path in _paths(model) if path not in found]


def _paths(model: SqlModel) -> list[tuple[str, str]]:
    """(model column, the source column it reads), once per source column, in manifest order."""
    wanted = set(source_columns(model))
    out: dict[str, str] = {}
    for name, column in model.columns.items():
        path = (column.path or name).split(".")[0]
        if path in wanted:
            out.setdefault(path, name)
    return [(name, path) for path, name in out.items()]


def _query_columns(connection: sa.Connection, query: str) -> list[str]:
    """The query's result columns without reading a row (the query is wrapped as the extractor does)."""
    # the manifest's own query, validated as one read-only SELECT (config/sql_query.py), run read-only
    result = connection.execute(sa.text(f"SELECT * FROM ({query}) AS kspyder_check WHERE 1 = 0"))  # noqa: S608
    try:
        return list(result.keys())
    finally:
        result.close()


def _has_table(connection: sa.Connection, inspector: sa.Inspector, table: str, schema: str | None) -> bool:
    try:
        with connection.begin_nested():   # an unknown schema may fail the catalogue query itself
            return inspector.has_table(table, schema=schema)
    except sa.exc.SQLAlchemyError:
        return False


def _tables(inspector: sa.Inspector, schema: str | None) -> list[str]:
    try:
        return inspector.get_table_names(schema=schema) + inspector.get_view_names(schema=schema)
    except sa.exc.SQLAlchemyError:
        return []   # an unknown schema: nothing to suggest


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6) or \
        [c for c in candidates if c.lower() == name.lower()][:1]
    return f" (did you mean {close[0]}?)" if close else ""


def _driver_line(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's first line, scrubbed (it may quote a value), without SQLAlchemy's SQL echo."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {safe_excerpt(lines[0] if lines else '', 200)}"
