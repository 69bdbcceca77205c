"""The target schema the manifests describe, as SQLAlchemy `MetaData`: every model's table and every
derived table (pipeline and aggregation outputs) the project declares."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa

from shared.config.child_tables import walk
from shared.config.project import ModelRef, Project
from shared.target.child_tables import child_keep, child_table, ref_children
from shared.target.engine import sql_schemas, target_engine
from shared.target.tables import DerivedTable, derived_table, model_table

TRANSFORMATIONS_FILE = "transformations.yml"   # shared.transform.config's, checked here without importing it


def derived_tables(project: Project) -> list[DerivedTable]:
    """Every derived table of the project; each builder reads its own manifest file (ConfigError
    when it is invalid). Add further builders of derived tables to this list."""
    from shared.aggregate.outputs import aggregation_outputs
    if not (Path(project.root) / TRANSFORMATIONS_FILE).exists():   # no pipelines: no pandas (docs/benchmarks.md)
        return aggregation_outputs(project)
    from shared.transform.outputs import pipeline_outputs  # lazy: transformations build on this package

    return [*pipeline_outputs(project), *aggregation_outputs(project)]


def target_schemas(project: Project) -> list[str]:
    """Every schema the target holds for this project: engines on SQLite attach them all."""
    return sql_schemas(project) + derived_schemas(project)


def derived_schemas(project: Project) -> list[str]:
    return sorted({d.schema for d in derived_tables(project)})


def schema_engine(project: Project, url: str | None = None) -> sa.Engine:
    """The target engine of plan and apply (and of the commands and functions that run them): on
    SQLite it knows the derived schemas too, whose files apply creates."""
    return target_engine(project, url, derived=lambda: derived_schemas(project))


def target_metadata(project: Project, dialect: str, refs: list[ModelRef] | None = None,
                    derived: Sequence[DerivedTable] = ()) -> sa.MetaData:
    metadata = sa.MetaData()
    for ref in refs if refs is not None else project.models():
        if ref.documents:
            continue   # store: mongo models have no table
        model_table(metadata, ref, project.settings.pii.redaction, dialect)
        for child in walk(ref_children(ref)):
            child_table(metadata, ref.source_name, child, project.settings.pii.redaction, dialect, child_keep(ref))
    for table in derived:
        if table.columns is not None:
            derived_table(metadata, table, dialect)
    return metadata
