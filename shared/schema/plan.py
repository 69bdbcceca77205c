"""Compute a Terraform-style plan: what apply would do to make the target match the manifests.

A plan is a pure value (no SQL runs to build it beyond reflection), so it can be printed, saved,
hashed and recomputed inside apply's transaction to prove nothing moved in between. Type and key
changes replace the table rather than altering it: target data is expendable and is re-extracted.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from shared.config.child_tables import table_names
from shared.config.project import ModelRef, Project
from shared.schema.desired import derived_tables
from shared.schema.snapshot import (
    SchemaState,
    Shapes,
    TableShape,
    digest,
    fingerprint,
    orphan_schemas,
    reflect_schema,
    shapes_of,
)
from shared.target.child_tables import model_tables
from shared.target.columns import StoredColumn
from shared.target.compare import TableDiff, compare_table
from shared.target.ownership import foreign_owner_message, project_id

CREATE_SCHEMA, CREATE_TABLE = "create_schema", "create_table"
CLAIM_SCHEMA = "claim_schema"   # mark a schema made before project marks as this project's (ownership.py)
ADD_COLUMN, DROP_COLUMN = "add_column", "drop_column"
REPLACE_TABLE, DROP_TABLE, DROP_SCHEMA = "replace_table", "drop_table", "drop_schema"
KIND_ORDER = (CREATE_SCHEMA, CLAIM_SCHEMA, CREATE_TABLE, ADD_COLUMN, DROP_COLUMN, REPLACE_TABLE, DROP_TABLE,
              DROP_SCHEMA)
MARKING = (CREATE_SCHEMA, CLAIM_SCHEMA)   # the changes after which apply marks the schema as this project's


class PlanError(Exception):
    """The plan cannot be made or applied; the message names schemas and tables, never data."""


@dataclass(frozen=True)
class Change:
    kind: str
    schema: str
    table: str | None = None
    column: str | None = None
    columns: tuple[StoredColumn, ...] = ()      # the new table (create/replace) or the new column
    reasons: tuple[str, ...] = ()               # replace
    retyped: tuple[tuple[str, str, str], ...] = ()
    key_change: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    tables: tuple[str, ...] = ()                # drop_schema: the managed tables it holds
    builder: str | None = None                  # a derived table: what rebuilds its rows ("transform x")

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}" if self.table else self.schema

    @property
    def table_name(self) -> str:
        """The table of a table or column change; a schema change has none."""
        if self.table is None:
            raise PlanError(f"the {self.kind} change of schema {self.schema} names no table")
        return self.table

    @property
    def column_name(self) -> str:
        """The column of a column change."""
        if self.column is None:
            raise PlanError(f"the {self.kind} change of {self.qualified} names no column")
        return self.column

    def as_json(self) -> dict:
        out: dict = {"kind": self.kind, "schema": self.schema, "table": self.table, "column": self.column}
        if self.kind == ADD_COLUMN:
            out["type"] = self.columns[0].describe()
        elif self.columns:
            out["columns"] = [{"name": c.name, "type": c.describe(), "primary_key": c.primary_key}
                              for c in self.columns]
        if self.reasons:
            out["reasons"] = list(self.reasons)
        if self.retyped:
            out["types"] = [{"column": c, "from": old, "to": new} for c, old, new in self.retyped]
        if self.key_change:
            out["primary_key"] = {"from": list(self.key_change[0]), "to": list(self.key_change[1])}
        if self.tables:
            out["tables"] = list(self.tables)
        if self.builder:
            out["builder"] = self.builder
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Kept:
    """A managed table or schema the manifests no longer describe, left alone without --prune."""

    schema: str
    table: str | None = None

    def as_json(self) -> dict:
        return {"schema": self.schema, "table": self.table}


@dataclass(frozen=True)
class PlanOptions:
    prune: bool = False
    selectors: tuple[str, ...] = ()   # manifest selection (`source` or `source.model`); () = all
    scope: tuple[str, ...] = ()       # globs narrowing the search for removed sources
    rebuild: bool = False             # drop the selected sources' tables and create them again

    def as_json(self) -> dict:
        return {"prune": self.prune, "selectors": list(self.selectors), "scope": list(self.scope),
                "rebuild": self.rebuild}


@dataclass(frozen=True)
class Plan:
    options: PlanOptions
    changes: tuple[Change, ...]
    kept: tuple[Kept, ...]
    models: tuple[str, ...]           # the models the plan covers, "source.model"
    fingerprint: str                  # of the live schema the plan was computed against
    result_fingerprint: str           # of the live schema once the plan is applied

    @property
    def plan_hash(self) -> str:
        return digest([c.as_json() for c in self.changes])

    @property
    def reextract(self) -> tuple[str, ...]:
        """New and rebuilt tables are empty: their models must run again to fill them."""
        return tuple(c.qualified for c in self.changes if c.kind in (CREATE_TABLE, REPLACE_TABLE) and not c.builder)

    @property
    def rebuild_derived(self) -> tuple[str, ...]:
        """New and replaced derived tables are empty until their builder runs ("transform x")."""
        return tuple(dict.fromkeys(c.builder for c in self.changes
                                   if c.kind in (CREATE_TABLE, REPLACE_TABLE) and c.builder))


def compute_plan(connection: sa.Connection, project: Project, options: PlanOptions = PlanOptions()) -> Plan:
    inspector = sa.inspect(connection)
    mine = project_id(connection, project)
    refs = [ref for ref in project.models(options.selectors) if not ref.documents]   # store: mongo: no tables
    by_source = _by_source(refs)
    states = [reflect_schema(inspector, source) for source in by_source]
    _refuse_others(states, mine)
    # removed sources are looked for only when the plan covers the whole project
    search = not (options.selectors or options.rebuild)
    # derived tables (pipeline outputs) belong to the whole-project plan, like removed sources
    derived = derived_tables(project) if search else []
    known = [n for n, s in project.sources.items() if s.store == "sql"] + [d.schema for d in derived]
    orphans = orphan_schemas(inspector, known, options.scope, mine) if search else []
    if options.rebuild:
        changes = _rebuild_changes(states, by_source, project)
        kept: list[Kept] = []
    else:
        changes, kept = _update_changes(inspector, states, orphans, by_source, project, options.prune)
    from shared.schema.plan_derived import derived_changes  # lazy: it builds on Change and refuse_foreign below

    derived_states, derived_found, derived_kept = derived_changes(inspector, derived, options.prune)
    _refuse_others(derived_states, mine)
    if derived_found:   # (never with rebuild, whose drops-then-creates order must stay)
        changes = sorted(changes + derived_found, key=lambda c: KIND_ORDER.index(c.kind))
    kept = kept + derived_kept
    live = shapes_of(states + derived_states + orphans)
    owned = {s.name for s in states + derived_states + orphans if mine is not None and s.owner == mine}
    return Plan(options, tuple(changes), tuple(kept), tuple(r.qualified for r in refs), fingerprint(live, owned),
                fingerprint(shapes_after(live, changes), owned_after(owned, changes)))


def _refuse_others(states: list[SchemaState], mine: str | None) -> None:
    """A schema marked by another project is never planned, changed or dropped by this one."""
    for state in states:
        if state.owner is not None and state.owner != mine:
            raise PlanError(foreign_owner_message(state.name, state.owner, mine))


def claim_change(state: SchemaState) -> list[Change]:
    """Adopt a source's schema made before project marks (it holds tables, no project marked it):
    the manifests describe it, so it is this project's from the next apply on."""
    return [Change(CLAIM_SCHEMA, state.name)] if state.holds_anything and state.owner is None else []


def _by_source(refs: list[ModelRef]) -> dict[str, list[ModelRef]]:
    out: dict[str, list[ModelRef]] = {}
    for ref in refs:
        out.setdefault(ref.source_name, []).append(ref)
    return out


def _update_changes(inspector: sa.Inspector, states: list[SchemaState], orphans: list[SchemaState],
                    by_source: dict[str, list[ModelRef]], project: Project,
                    prune: bool) -> tuple[list[Change], list[Kept]]:
    changes: list[Change] = []
    kept: list[Kept] = []
    for state in states:
        found = _source_changes(inspector, state, by_source[state.name], project, prune)
        changes += found[0]
        kept += found[1]
    for state in orphans:
        found = _orphan_changes(state, prune)
        changes += found[0]
        kept += found[1]
    changes.sort(key=lambda c: KIND_ORDER.index(c.kind))   # Terraform's reading order: creates first
    return changes, kept


def _source_changes(inspector: sa.Inspector, state: SchemaState, refs: list[ModelRef], project: Project,
                    prune: bool) -> tuple[list[Change], list[Kept]]:
    changes = [Change(CREATE_SCHEMA, state.name)] if not state.holds_anything else claim_change(state)
    for ref in refs:
        for table, desired in model_tables(ref, project.settings.pii.redaction):   # its child tables too
            _refuse_foreign(state, table)
            changes += table_changes(compare_table(inspector, state.name, table, desired), desired)
    # removed models: judged against every model of the source, whatever the selection
    tables = {t for name, model in project.sources[state.name].models.items() for t in table_names(name, model)}
    removed = [table for table in sorted(state.managed) if table not in tables]
    if prune:
        return changes + [Change(DROP_TABLE, state.name, table) for table in removed], []
    return changes, [Kept(state.name, table) for table in removed]


def _refuse_foreign(state: SchemaState, table: str) -> None:
    refuse_foreign(state, table, "rename or drop it, or rename the model")


def refuse_foreign(state: SchemaState, table: str, advice: str) -> None:
    if table in state.foreign:
        raise PlanError(f"{state.name}.{table} exists but is not a kspyder table (it has no _kspyder_run_id "
                        f"column): kspyder never touches it; {advice}")


def table_changes(diff: TableDiff, desired: list[StoredColumn]) -> list[Change]:
    if not diff.exists:
        return [Change(CREATE_TABLE, diff.schema, diff.table, columns=tuple(desired))]
    if diff.needs_replace:
        key = (tuple(diff.key_change[0]), tuple(diff.key_change[1])) if diff.key_change else None
        return [Change(REPLACE_TABLE, diff.schema, diff.table, columns=tuple(desired), reasons=tuple(diff.reasons()),
                       retyped=tuple(diff.retyped), key_change=key)]
    return ([Change(ADD_COLUMN, diff.schema, diff.table, c.name, columns=(c,)) for c in diff.added]
            + [Change(DROP_COLUMN, diff.schema, diff.table, name) for name in diff.removed])


def _orphan_changes(state: SchemaState, prune: bool) -> tuple[list[Change], list[Kept]]:
    """A removed source: its whole schema goes, unless it also holds tables that are not kspyder's."""
    if not prune:
        return [], [Kept(state.name)]
    if state.foreign:
        return [Change(DROP_TABLE, state.name, table) for table in sorted(state.managed)], []
    return [Change(DROP_SCHEMA, state.name, tables=tuple(sorted(state.managed)))], []


def _rebuild_changes(states: list[SchemaState], by_source: dict[str, list[ModelRef]], project: Project) -> list[Change]:
    """Drops first, then creates: the "destroy and recreate at any time" promise, table by table."""
    drops: list[Change] = []
    creates: list[Change] = []
    for state in states:
        whole = bool(state.managed) and not state.foreign
        if whole:
            drops.append(Change(DROP_SCHEMA, state.name, tables=tuple(sorted(state.managed))))
        else:
            drops.extend(Change(DROP_TABLE, state.name, table) for table in sorted(state.managed))
        if whole or not state.holds_anything:
            creates.append(Change(CREATE_SCHEMA, state.name))
        else:
            creates.extend(claim_change(state))
        for ref in by_source[state.name]:
            for table, desired in model_tables(ref, project.settings.pii.redaction):
                _refuse_foreign(state, table)
                creates.append(Change(CREATE_TABLE, state.name, table, columns=tuple(desired)))
    return drops + creates


def owned_after(owned: set[str], changes: Iterable[Change]) -> set[str]:
    """The schemas marked as this project's once `changes` are applied."""
    after = set(owned)
    for c in changes:
        if c.kind in MARKING:
            after.add(c.schema)
        elif c.kind == DROP_SCHEMA:
            after.discard(c.schema)
    return after


def shapes_after(live: Shapes, changes: Iterable[Change]) -> Shapes:
    """The managed tables once `changes` are applied, so a re-applied plan is recognised as done."""
    after = {schema: dict(tables) for schema, tables in live.items()}
    for c in changes:
        tables = after.get(c.schema, {})
        if c.kind in (CREATE_TABLE, REPLACE_TABLE):
            tables[c.table_name] = TableShape.of(c.columns)
        elif c.kind == ADD_COLUMN:
            shape = tables[c.table_name]
            added = (c.column_name, c.columns[0].describe())
            tables[c.table_name] = TableShape(tuple(sorted(shape.columns + (added,))), shape.key)
        elif c.kind == DROP_COLUMN:
            shape = tables[c.table_name]
            tables[c.table_name] = TableShape(tuple(col for col in shape.columns if col[0] != c.column), shape.key)
        elif c.kind == DROP_TABLE:
            tables.pop(c.table_name, None)
        elif c.kind == DROP_SCHEMA:
            tables = {}
        after[c.schema] = tables
    return after
