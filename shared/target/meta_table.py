"""`_kspyder`: kspyder's own facts about a target, as (source, name, value) rows. One design for
all of them: the PII key's fingerprint per source and this project's id live in the default
schema's table (`pii_key_check.py`, `ownership.py`); each schema a project owns holds its own
table with one row naming that project, so the mark travels and is dropped with the schema.
It has no `_kspyder_run_id` column: never planned, altered or pruned as a model's table."""
from __future__ import annotations

import sqlalchemy as sa

TABLE = "_kspyder"
STATE_TABLE = "_kspyder_state"   # incremental cursors, one table per source schema (`load/cursor_state.py`)


def meta_table(schema: str | None = None) -> sa.Table:
    """The table in `schema` (None: the connection's default schema)."""
    return sa.Table(
        TABLE, sa.MetaData(),
        sa.Column("source", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def forget_cursors(connection: sa.Connection, schema: str, model: str | None = None) -> int:
    """Delete the incremental cursors of a source's schema (or of one model): its table was created,
    replaced or dropped, so its next run starts from `initial_value`. Returns the cursors deleted."""
    if not sa.inspect(connection).has_table(STATE_TABLE, schema=schema):
        return 0
    state = sa.table(STATE_TABLE, sa.column("source"), sa.column("model"), schema=schema)
    statement = sa.delete(state).where(state.c.source == schema)
    if model is not None:
        statement = statement.where(state.c.model == model)
    return connection.execute(statement).rowcount or 0
