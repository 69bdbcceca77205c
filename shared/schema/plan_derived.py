"""The plan for derived tables (pipeline outputs): created when new, replaced when their inferred
columns change (they are rebuilt whole on every run anyway, so nothing is altered in place), and
kept, or dropped with --prune, when their pipeline is gone."""
from __future__ import annotations

import sqlalchemy as sa

from shared.schema.plan import CREATE_SCHEMA, CREATE_TABLE, DROP_TABLE, REPLACE_TABLE, Change, Kept, refuse_foreign
from shared.schema.snapshot import SchemaState, reflect_schema
from shared.target.compare import compare_table
from shared.target.tables import DerivedTable


def derived_changes(inspector: sa.Inspector, derived: list[DerivedTable],
                    prune: bool) -> tuple[list[SchemaState], list[Change], list[Kept]]:
    """(the derived schemas' live state, changes, kept tables) for every derived table."""
    by_schema: dict[str, list[DerivedTable]] = {}
    for table in derived:
        by_schema.setdefault(table.schema, []).append(table)
    states, changes, kept = [], [], []
    for schema, tables in sorted(by_schema.items()):
        state = reflect_schema(inspector, schema)
        states.append(state)
        if not state.holds_anything and any(t.columns is not None for t in tables):
            changes.append(Change(CREATE_SCHEMA, schema))   # (marked as this project's by apply)
        # an unmarked output schema is not claimed: a builder (an aggregation's) made it, and it
        # is this project's by its manifests; only marked ones are ever found as removed (docs)
        for table in tables:
            refuse_foreign(state, table.table, "rename or drop it, or change the pipeline's output")
            if table.columns is None:
                continue   # an aggregation's table: its builder creates it with each run's columns
            diff = compare_table(inspector, schema, table.table, list(table.columns))
            if not diff.exists:
                changes.append(Change(CREATE_TABLE, schema, table.table, columns=table.columns, builder=table.builder))
            elif not diff.matches:
                reasons = tuple([f"column {c.name} is new" for c in diff.added]
                                + [f"column {name} is gone" for name in diff.removed] + diff.reasons())
                changes.append(Change(REPLACE_TABLE, schema, table.table, columns=table.columns, reasons=reasons,
                                      retyped=tuple(diff.retyped), builder=table.builder))
        wanted = {t.table for t in tables}
        removed = [name for name in sorted(state.managed) if name not in wanted]
        if prune:
            changes += [Change(DROP_TABLE, schema, name) for name in removed]
        else:
            kept += [Kept(schema, name) for name in removed]
    return states, changes, kept
