"""The tables a model's child tables map to (`config/child_tables.py`): the links to the parent row
and the item's position as the key, then the declared columns and kspyder's load metadata."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from shared.config.child_tables import POSITION, ChildTable, child_tables, walk
from shared.config.models import ColumnType
from shared.config.project import ModelRef
from shared.target.columns import (
    DELETED_AT,
    LOADED_AT,
    RUN_ID,
    VALID_FROM,
    StoredColumn,
    stored_column,
    stored_columns,
)
from shared.target.dialects import column_type, table_options
from shared.target.tables import desired_columns


@dataclass(frozen=True)
class ChildKeep:
    """What a child row carries to follow its parent's disposition: `soft`, a `_kspyder_deleted_at`
    set with the parent's (merge + deletes: soft); `version`, the parent's column that joins the
    child's key, after the model key, so that each parent row kept owns its own children
    (`_kspyder_valid_from` for history: scd2, `_kspyder_run_id` for write: append)."""

    soft: bool = False
    version: str | None = None


def child_keep(ref: ModelRef) -> ChildKeep:
    model = ref.model
    if model.history == "scd2":   # a vanished parent's version is closed: its children need no mark
        return ChildKeep(version=VALID_FROM)
    if model.write_mode == "append":
        return ChildKeep(version=RUN_ID)
    return ChildKeep(soft=model.deletes == "soft")


def child_desired_columns(child: ChildTable, redaction: str, keep: ChildKeep = ChildKeep()) -> list[StoredColumn]:
    """Link columns stored as on the parent (a hashed key stays a hash), the parent version's column
    (`keep.version`), the position, the declared columns, the load metadata; `_kspyder_deleted_at`
    when the model has `deletes: soft` (a child row is marked with its parent)."""
    stored = [stored_column(name, column, redaction, primary_key=True) for name, column in child.link_columns().items()]
    links = [c for c in stored if c is not None]
    meta = [StoredColumn(LOADED_AT, ColumnType.datetime)]
    if keep.version == VALID_FROM:
        version = [StoredColumn(VALID_FROM, ColumnType.datetime, primary_key=True)]
    elif keep.version == RUN_ID:
        version = [StoredColumn(RUN_ID, ColumnType.string, 36, primary_key=True)]
    else:
        version = []
    if keep.version != RUN_ID:
        meta.insert(0, StoredColumn(RUN_ID, ColumnType.string, 36))
    if keep.soft:
        meta.append(StoredColumn(DELETED_AT, ColumnType.datetime))
    model_key = [c for c in links if not c.name.startswith(POSITION)]
    positions = [c for c in links if c.name.startswith(POSITION)]
    return model_key + version + positions + stored_columns(child.columns, [], redaction) + meta


def child_table(metadata: sa.MetaData, schema: str, child: ChildTable, redaction: str, dialect: str,
                keep: ChildKeep = ChildKeep()) -> sa.Table:
    columns = [sa.Column(c.name, column_type(c, dialect), primary_key=c.primary_key, nullable=not c.primary_key,
                         autoincrement=False)
               for c in child_desired_columns(child, redaction, keep)]
    return sa.Table(child.name, metadata, *columns, schema=schema, **table_options(dialect))


def ref_children(ref: ModelRef) -> tuple[ChildTable, ...]:
    """The model's child tables (none for a store: mongo model: its documents keep their lists)."""
    return () if ref.documents else child_tables(ref.name, ref.model)


def model_tables(ref: ModelRef, redaction: str) -> list[tuple[str, list[StoredColumn]]]:
    """(table, desired columns) of the model's own table and of every child table, parents first."""
    return [(ref.name, desired_columns(ref, redaction))] + [
        (child.name, child_desired_columns(child, redaction, child_keep(ref))) for child in walk(ref_children(ref))]
