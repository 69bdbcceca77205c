"""Staging tables: filled out of readers' sight, then swapped into place in one step (`swap_in`).

A keyless model's run fills `_kspyder_stg_<run>_<table>` in the model's own schema (on SQLite, the
source's attached file, where one transaction reaches both), and the run's end swaps it in; a
transformation output on MariaDB is staged and swapped the same way (`replace.py`). The name is
derived, never stored: the run's Loader, a later step of the queue chain and the next run all
compute it. Staging tables are not the manifest's: `plan`, `apply` and the drift check never see
them (`compare.live_tables`).
"""
from __future__ import annotations

import uuid

import sqlalchemy as sa

from shared.target.dialects import MYSQL_FAMILY
from shared.target.staging_names import SWAP_PREFIXES


def swap_in(engine: sa.Engine, staging: sa.Table, live: sa.Table, values: dict[str, object] | None = None) -> int:
    """Put a filled staging table's rows in place of `live`'s, so that readers see the old rows or
    the new ones, never a mix nor an empty table in between; the staging table is gone after.
    `values`: columns given one value in every row as they go in (a load's run id, in place of the
    page tags of the queue chain's loads). Returns the number of rows replaced. Same schema for
    both (on SQLite: one attached file).

    MariaDB/MySQL commit DDL on their own: one `RENAME TABLE` of two pairs, atomic, makes the staged
    table the live one (created from the same definition; grants and views there name the table).
    PostgreSQL and SQLite: in one transaction, the live table's rows are deleted and the staged ones
    copied in; the table itself stays, with its grants, comment and the views over it. A live table
    that does not exist yet is the staging table renamed."""
    return swap_in_all(engine, [(staging, live)], values)[0]


def swap_in_all(engine: sa.Engine, pairs: list[tuple[sa.Table, sa.Table]],
                values: dict[str, object] | None = None) -> list[int]:
    """`swap_in` of several (staging, live) pairs in one step (a model and its child tables):
    readers see every table's old rows or every table's new ones. Rows replaced, per pair."""
    name = engine.dialect.identifier_preparer.format_table
    quote = engine.dialect.identifier_preparer.quote
    values = values or {}
    replaced = [0] * len(pairs)
    if engine.dialect.name in MYSQL_FAMILY:
        swapped: list[tuple[int, sa.Table, sa.Table, sa.Table]] = []
        with engine.begin() as connection:
            for i, (staging, live) in enumerate(pairs):
                _assign(connection, staging, values)   # out of readers' sight: not swapped in yet
                if not sa.inspect(connection).has_table(live.name, schema=live.schema):
                    connection.exec_driver_sql(f"RENAME TABLE {name(staging)} TO {name(live)}")
                else:
                    old = sa.Table(f"{SWAP_PREFIXES[1]}{uuid.uuid4().hex[:12]}", sa.MetaData(), schema=live.schema)
                    swapped.append((i, staging, live, old))
        if not swapped:
            return replaced
        with engine.begin() as connection:
            # one statement: readers never see a table missing, nor one table swapped and not another
            renames = ", ".join(f"{name(live)} TO {name(old)}, {name(staging)} TO {name(live)}"
                                for _, staging, live, old in swapped)
            connection.exec_driver_sql(f"RENAME TABLE {renames}")
            for i, _, _, old in swapped:
                replaced[i] = connection.execute(sa.select(sa.func.count()).select_from(old)).scalar_one()
                old.drop(connection)
        return replaced
    inspector = sa.inspect(engine)
    exists = [inspector.has_table(live.name, schema=live.schema) for _, live in pairs]
    # the transaction's first statement writes: SQLite takes its write lock then (waiting for another
    # writer), where a read first would fail to upgrade once another connection has written
    with engine.begin() as connection:
        for i, (staging, live) in enumerate(pairs):
            if not exists[i]:
                _assign(connection, staging, values)
                connection.exec_driver_sql(f"ALTER TABLE {name(staging)} RENAME TO {quote(live.name)}")
                continue
            columns = [c.name for c in staging.columns]
            given = {column: f":v{n}" for n, column in enumerate(values)}
            selected = ", ".join(given.get(c, quote(c)) for c in columns)
            # identifiers only, quoted by the dialect; the values are bound parameters
            replaced[i] = connection.exec_driver_sql(f"DELETE FROM {name(live)}").rowcount  # noqa: S608
            connection.execute(sa.text(f"INSERT INTO {name(live)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
                                       f"SELECT {selected} FROM {name(staging)}"), _binds(values))
            connection.exec_driver_sql(f"DROP TABLE {name(staging)}")
    return replaced


def _binds(values: dict[str, object]) -> dict[str, object]:
    return {f"v{i}": value for i, value in enumerate(values.values())}


def _assign(connection: sa.Connection, staging: sa.Table, values: dict[str, object]) -> None:
    """Set `values` in the staging table's rows that differ (where a rename swaps the table in)."""
    if not values:
        return
    quote = connection.dialect.identifier_preparer.quote
    assignments = ", ".join(f"{quote(column)} = :v{i}" for i, column in enumerate(values))
    differ = " OR ".join(f"{quote(column)} <> :v{i} OR {quote(column)} IS NULL" for i, column in enumerate(values))
    # identifiers only, quoted by the dialect; the values are bound parameters
    connection.execute(sa.text(f"UPDATE {connection.dialect.identifier_preparer.format_table(staging)} "  # noqa: S608
                               f"SET {assignments} WHERE {differ}"), _binds(values))
