"""Aggregation output tables as the target's derived tables, so `plan` knows them: they are neither
removed sources nor stray tables, and `apply --prune` leaves them alone. Their columns follow the
documents of each run (`replace_table` recreates the table whole), so nothing is planned for them."""
from __future__ import annotations

from shared.aggregate.config import load_aggregations
from shared.config.project import Project
from shared.target.tables import DerivedTable


def aggregation_outputs(project: Project) -> list[DerivedTable]:
    return [DerivedTable(a.schema_table[0], a.schema_table[1], None, f"aggregate {name}")
            for name, a in load_aggregations(project).items() if a.schema_table is not None]
