"""The tables a model's child tables map to (`config/child_tables.py`): the links to the parent row
and the item's position as the key, then the declared columns and kspyder's load metadata."""
from __future__ import annotations

import sqlalchemy as sa

from shared.config.child_tables import ChildTable, child_tables, walk
from shared.config.models import ColumnType
from shared.config.project import ModelRef
from shared.target.columns import DELETED_AT, LOADED_AT, RUN_ID, StoredColumn, stored_column, stored_columns
from shared.target.dialects import column_type, table_options
from shared.target.tables import desired_columns


def child_desired_columns(child: ChildTable, redaction: str, soft_deletes: bool = False) -> list[StoredColumn]:
    """Link columns stored as on the parent (a hashed key stays a hash), the position, the declared
    columns, the load metadata; `_kspyder_deleted_at` when the model has `deletes: soft` (a child
    row is marked with its parent)."""
    links = [stored_column(name, column, redaction, primary_key=True) for name, column in child.link_columns().items()]
    own = stored_columns(child.columns, [], redaction)
    meta = [StoredColumn(RUN_ID, ColumnType.string, 36), StoredColumn(LOADED_AT, ColumnType.datetime)]
    if soft_deletes:
        meta.append(StoredColumn(DELETED_AT, ColumnType.datetime))
    return [c for c in links if c is not None] + own + meta


def soft_deletes(ref: ModelRef) -> bool:
    """The model marks vanished rows, and its children with them (a versioned model closes them)."""
    return ref.model.deletes == "soft" and ref.model.history != "scd2"


def child_table(metadata: sa.MetaData, schema: str, child: ChildTable, redaction: str, dialect: str,
                soft: bool = False) -> sa.Table:
    columns = [sa.Column(c.name, column_type(c, dialect), primary_key=c.primary_key, nullable=not c.primary_key,
                         autoincrement=False)
               for c in child_desired_columns(child, redaction, soft)]
    return sa.Table(child.name, metadata, *columns, schema=schema, **table_options(dialect))


def ref_children(ref: ModelRef) -> tuple[ChildTable, ...]:
    """The model's child tables (none for a store: mongo model: its documents keep their lists)."""
    return () if ref.documents else child_tables(ref.name, ref.model)


def model_tables(ref: ModelRef, redaction: str) -> list[tuple[str, list[StoredColumn]]]:
    """(table, desired columns) of the model's own table and of every child table, parents first."""
    return [(ref.name, desired_columns(ref, redaction))] + [
        (child.name, child_desired_columns(child, redaction, soft_deletes(ref))) for child in walk(ref_children(ref))]
