"""The tables models map to, as SQLAlchemy objects: one schema per source, one table per model with
its primary key and kspyder's load metadata columns; derived tables without a key. No DDL strings."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from shared.config.models import ColumnType
from shared.config.project import ModelRef
from shared.target.columns import (
    CURRENT,
    DELETED_AT,
    HASH_LENGTH,
    LOADED_AT,
    ROW_HASH,
    RUN_ID,
    VALID_FROM,
    VALID_TO,
    StoredColumn,
    stored_columns,
)
from shared.target.dialects import column_type, table_options


def desired_columns(ref: ModelRef, redaction: str) -> list[StoredColumn]:
    """The model's stored columns followed by the load metadata columns and those of its write
    disposition (docs/loading.md): an appended table has no key, a versioned one adds the version's
    start to it."""
    model = ref.model
    key = [] if model.write_mode == "append" else model.primary_key
    columns = stored_columns(model.columns, key, redaction)
    meta = [StoredColumn(RUN_ID, ColumnType.string, 36), StoredColumn(LOADED_AT, ColumnType.datetime)]
    if model.history == "scd2":
        meta += [StoredColumn(VALID_FROM, ColumnType.datetime, primary_key=True),
                 StoredColumn(VALID_TO, ColumnType.datetime), StoredColumn(CURRENT, ColumnType.boolean),
                 StoredColumn(ROW_HASH, ColumnType.string, HASH_LENGTH)]
    elif model.deletes == "soft":   # a versioned model closes a vanished row's version instead
        meta.append(StoredColumn(DELETED_AT, ColumnType.datetime))
    return columns + meta


def model_table(metadata: sa.MetaData, ref: ModelRef, redaction: str, dialect: str) -> sa.Table:
    columns = [sa.Column(c.name, column_type(c, dialect), primary_key=c.primary_key, nullable=not c.primary_key,
                         autoincrement=False)
               for c in desired_columns(ref, redaction)]
    return sa.Table(ref.name, metadata, *columns, schema=ref.source_name, comment=ref.model.description,
                    **table_options(dialect))


@dataclass(frozen=True)
class DerivedTable:
    """A table kspyder derives from the models and replaces whole on every build (a pipeline's
    output): planned like a model's table, with the columns its builder infers, and no key."""

    schema: str
    table: str
    columns: tuple[StoredColumn, ...] | None   # None: known only when built (aggregations): not planned
    builder: str            # what rebuilds it, for the plan: "transform monthly_revenue"

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


def derived_table(metadata: sa.MetaData, derived: DerivedTable, dialect: str) -> sa.Table:
    """The same table `shared.load.replace` creates: nullable columns, no key."""
    if derived.columns is None:
        raise ValueError(f"{derived.qualified}: its columns are known only once it is built")
    columns = [sa.Column(c.name, column_type(c, dialect), nullable=True) for c in derived.columns]
    return sa.Table(derived.table, metadata, *columns, schema=derived.schema, **table_options(dialect))
