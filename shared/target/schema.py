"""The target schema the manifests describe, as SQLAlchemy `MetaData`: one schema per source, one
table per model, the model's primary key, and kspyder's load metadata columns. No DDL strings."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from shared.config.models import ColumnType
from shared.config.project import ModelRef, Project
from shared.target.columns import LOADED_AT, RUN_ID, StoredColumn, stored_columns
from shared.target.dialects import column_type, table_options

TRANSFORMATIONS_FILE = "transformations.yml"   # shared.transform.config's, checked here without importing it


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


def derived_tables(project: Project) -> list[DerivedTable]:
    """Every derived table of the project; each builder reads its own manifest file (ConfigError
    when it is invalid). Add further builders of derived tables to this list."""
    from shared.aggregate.outputs import aggregation_outputs
    if not (Path(project.root) / TRANSFORMATIONS_FILE).exists():   # no pipelines: pandas not imported (~0.5 s)
        return aggregation_outputs(project)
    from shared.transform.outputs import pipeline_outputs  # lazy: transformations build on this package

    return [*pipeline_outputs(project), *aggregation_outputs(project)]


def target_schemas(project: Project) -> list[str]:
    """Every schema the target holds for this project: engines on SQLite attach them all."""
    sql = [name for name, source in project.sources.items() if source.store == "sql"]   # mongo: no schema
    return sql + sorted({d.schema for d in derived_tables(project)})


def derived_table(metadata: sa.MetaData, derived: DerivedTable, dialect: str) -> sa.Table:
    """The same table `shared.target.replace` creates: nullable columns, no key."""
    if derived.columns is None:
        raise ValueError(f"{derived.qualified}: its columns are known only once it is built")
    columns = [sa.Column(c.name, column_type(c), nullable=True) for c in derived.columns]
    return sa.Table(derived.table, metadata, *columns, schema=derived.schema, **table_options(dialect))


def target_metadata(project: Project, dialect: str, refs: list[ModelRef] | None = None,
                    derived: Sequence[DerivedTable] = ()) -> sa.MetaData:
    metadata = sa.MetaData()
    for ref in refs if refs is not None else project.models():
        if ref.documents:
            continue   # store: mongo models have no table
        model_table(metadata, ref, project.settings.pii.redaction, dialect)
    for table in derived:
        if table.columns is not None:
            derived_table(metadata, table, dialect)
    return metadata
