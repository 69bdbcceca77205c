"""The target schema the manifests describe, as SQLAlchemy `MetaData`: one schema per source, one
table per model, the model's primary key, and kspyder's load metadata columns. No DDL strings."""
from __future__ import annotations

import sqlalchemy as sa

from shared.config.models import ColumnType
from shared.config.project import ModelRef, Project
from .columns import LOADED_AT, RUN_ID, StoredColumn, stored_columns
from .dialects import column_type, table_options


def desired_columns(ref: ModelRef, redaction: str) -> list[StoredColumn]:
    """The model's stored columns followed by the load metadata columns."""
    columns = stored_columns(ref.model.columns, ref.model.primary_key, redaction)
    return columns + [StoredColumn(RUN_ID, ColumnType.string, 36), StoredColumn(LOADED_AT, ColumnType.datetime)]


def model_table(metadata: sa.MetaData, ref: ModelRef, redaction: str, dialect: str) -> sa.Table:
    columns = [sa.Column(c.name, column_type(c), primary_key=c.primary_key, nullable=not c.primary_key,
                         autoincrement=False)
               for c in desired_columns(ref, redaction)]
    return sa.Table(ref.name, metadata, *columns, schema=ref.source_name, comment=ref.model.description,
                    **table_options(dialect))


def target_metadata(project: Project, dialect: str, refs: list[ModelRef] | None = None) -> sa.MetaData:
    metadata = sa.MetaData()
    for ref in refs if refs is not None else project.models():
        model_table(metadata, ref, project.settings.pii.redaction, dialect)
    return metadata
