"""Pipeline outputs as the target's derived tables, for `plan`/`apply`: the columns the dry run
infers, so a new or changed pipeline shows up in `plan` before it ever runs."""
from __future__ import annotations

from shared.config.project import Project
from shared.target.tables import DerivedTable
from shared.transform.config import load_transformations


def pipeline_outputs(project: Project) -> list[DerivedTable]:
    return [DerivedTable(p.output_schema, p.output_table, tuple(p.columns), f"transform {p.name}")
            for p in load_transformations(project).pipelines.values()]
