"""`_kspyder_state`: the cursor of each incremental model, kept in the target next to its rows.

One table per source schema (on SQLite, the source's attached file), one row per (source, model,
partition); partition "" is the model's own cursor, a child model's name its parents
(`extract/parent_state.py`).
Written in the transaction that commits the rows the cursor covers, so a crash never moves a cursor
past the rows loaded; dropping the schema (`rebuild`, a dropped target) drops it with them. It has no
`_kspyder_run_id` column: never planned, altered or pruned as a model's table (`compare.live_tables`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from shared.extract.cursor import KINDS, Cursor, Kind, read_cursor
from shared.load.upsert import upsert_statement
from shared.target.meta_table import STATE_TABLE, forget_cursors

_KIND: dict[str, Kind] = {kind: kind for kind in KINDS}
WHOLE = ""   # the partition of a model's own cursor


def state_table(schema: str) -> sa.Table:
    return sa.Table(
        STATE_TABLE, sa.MetaData(),
        sa.Column("source", sa.String(63), primary_key=True),
        sa.Column("model", sa.String(63), primary_key=True),
        sa.Column("partition", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cursor", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=True),   # the queue chain: last page the cursor covers
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


@dataclass(frozen=True)
class SavedCursor:
    """A committed cursor as read back."""

    source: str
    model: str
    partition: str
    kind: str
    cursor: str
    run_id: str
    updated_at: datetime | None
    position: int | None = None

    @property
    def qualified(self) -> str:
        return f"{self.source}.{self.model}"

    def value(self) -> Cursor:
        found = read_cursor(self.cursor, _KIND.get(self.kind), f"the saved cursor of {self.qualified}")
        if found is None:
            raise ValueError(f"the saved cursor of {self.qualified} is empty")
        return found


def ensure_state_table(engine: sa.Engine, schema: str) -> None:
    """Create the schema's state table if missing (two runs may race: the loser finds it made). One
    writing statement first in its transaction, as SQLite needs (see `Loader._create_staging`)."""
    table = state_table(schema)
    try:
        with engine.begin() as connection:
            connection.execute(sa.schema.CreateTable(table, if_not_exists=True))
    except sa.exc.DBAPIError:
        if not sa.inspect(engine).has_table(STATE_TABLE, schema=schema):
            raise


def write_state(connection: sa.Connection, source: str, model: str, cursor: Cursor, run_id: str,
                partition: str = WHOLE) -> None:
    """Set the cursor inside the caller's transaction (the one committing the rows it covers)."""
    table = state_table(source)
    statement = upsert_statement(table, ["source", "model", "partition"], connection.dialect.name)
    connection.execute(statement, [{"source": source, "model": model, "partition": partition, "kind": cursor.kind,
                                    "cursor": cursor.text(), "run_id": run_id[:36],
                                    "updated_at": _now(connection)}])


def advance_state(connection: sa.Connection, source: str, model: str, cursor: Cursor, run_id: str, position: int,
                  partition: str = WHOLE) -> bool:
    """Set the cursor a run's page `position` allows, unless this run already committed a later page's
    (queue chain: pages load in any order, on several workers). Inside the caller's transaction; a
    second first-insert of the row fails on its key and is retried with its message. True if set."""
    table = state_table(source)
    values = {"kind": cursor.kind, "cursor": cursor.text(), "run_id": run_id[:36], "position": position,
              "updated_at": _now(connection)}
    mine = sa.and_(table.c.source == source, table.c.model == model, table.c.partition == partition)
    later = sa.or_(table.c.run_id != run_id[:36], table.c.position.is_(None), table.c.position < position)
    if connection.execute(sa.update(table).where(mine, later).values(**values)).rowcount:
        return True
    if connection.execute(sa.select(table.c.model).where(mine)).first() is not None:
        return False
    connection.execute(sa.insert(table).values(source=source, model=model, partition=partition, **values))
    return True


def _now(connection: sa.Connection) -> datetime:
    now = datetime.now(UTC)
    return now if connection.dialect.name == "postgresql" else now.replace(tzinfo=None)


def read_state(connection: sa.Connection, source: str, model: str, partition: str = WHOLE) -> SavedCursor | None:
    """The committed cursor; None when there is none (or no state table yet)."""
    for saved in list_state(connection, source, model):
        if saved.partition == partition:
            return saved
    return None


def list_state(connection: sa.Connection, source: str, model: str | None = None) -> list[SavedCursor]:
    if not sa.inspect(connection).has_table(STATE_TABLE, schema=source):
        return []
    table = state_table(source)
    query = sa.select(table).where(table.c.source == source).order_by(table.c.model, table.c.partition)
    if model is not None:
        query = query.where(table.c.model == model)
    return [SavedCursor(row.source, row.model, row.partition, row.kind, row.cursor, row.run_id, row.updated_at,
                        row.position) for row in connection.execute(query)]


def reset_state(connection: sa.Connection, source: str, model: str | None = None) -> int:
    """Forget the cursors of a source (or one model of it): the next run starts from `initial_value`."""
    return forget_cursors(connection, source, model)
