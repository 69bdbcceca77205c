"""A plan as a person reads it at a glance, Terraform-style: one line per change, a summary line.

Lines name schemas, tables, columns and types only: a plan never shows data.
"""
from __future__ import annotations

from shared.schema.plan import (
    ADD_COLUMN,
    CLAIM_SCHEMA,
    CREATE_SCHEMA,
    CREATE_TABLE,
    DROP_COLUMN,
    DROP_SCHEMA,
    DROP_TABLE,
    REPLACE_TABLE,
    Change,
    Kept,
    Plan,
)
from shared.target.columns import DELETED_AT, META_COLUMNS

NO_CHANGES = "No changes. The target matches the manifests."
CATEGORIES = (("create", "created", (CREATE_SCHEMA, CREATE_TABLE)),
              ("change", "changed", (CLAIM_SCHEMA, ADD_COLUMN, DROP_COLUMN)),
              ("replace", "replaced", (REPLACE_TABLE,)), ("drop", "dropped", (DROP_TABLE, DROP_SCHEMA)))


def render_change(change: Change) -> str:
    c = change
    if c.kind == CREATE_SCHEMA:
        return f"+ create schema {c.schema}"
    if c.kind == CLAIM_SCHEMA:
        return f"~ claim schema {c.schema} (made before project marks: marked as this project's)"
    if c.kind == CREATE_TABLE and c.builder:
        return f"+ create table {c.qualified} ({c.builder}: {_column_list(c)})"
    if c.kind == CREATE_TABLE:
        return f"+ create table {c.qualified} ({_table_summary(c)})"
    if c.kind == ADD_COLUMN:
        note = " (deletes: soft; existing rows kept, none marked deleted)" if c.column == DELETED_AT else ""
        return f"~ add column {c.qualified}.{c.column} {c.columns[0].describe()}{note}"
    if c.kind == DROP_COLUMN:
        note = " (deletes: soft removed; rows marked deleted stay, unmarked)" if c.column == DELETED_AT else ""
        return f"~ drop column {c.qualified}.{c.column}{note}"
    if c.kind == REPLACE_TABLE and c.builder:
        return f"-/+ replace table {c.qualified} (reason: {'; '.join(c.reasons)}; {c.builder}: {_column_list(c)})"
    if c.kind == REPLACE_TABLE:
        return f"-/+ replace table {c.qualified} (reason: {'; '.join(c.reasons)})"
    if c.kind == DROP_TABLE:
        return f"- drop table {c.qualified}"
    if c.kind == DROP_SCHEMA:
        return f"- drop schema {c.schema} ({_count(len(c.tables), 'table')}: {', '.join(c.tables)})"
    raise ValueError(f"unknown change kind {c.kind}")


def _table_summary(change: Change) -> str:
    """Columns as the manifest declares them (the load metadata columns are implied)."""
    columns = [c for c in change.columns if c.name not in META_COLUMNS]
    key = [c.name for c in columns if c.primary_key]
    key_text = "no key" if not key else f"key {key[0]}" if len(key) == 1 else f"key ({', '.join(key)})"
    return f"{_count(len(columns), 'column')}, {key_text}"


def _column_list(change: Change) -> str:
    """A derived table's inferred columns: its builder, not a manifest, says what they are."""
    return ", ".join(f"{c.name} {c.describe()}" for c in change.columns if c.name not in META_COLUMNS)


def render_kept(kept: Kept) -> str:
    what = f"{kept.schema}.{kept.table}" if kept.table else f"schema {kept.schema}"
    return f"{what} is no longer in the manifests (kept; use --prune to drop it)"


def render_plan(plan: Plan) -> str:
    lines = [render_change(c) for c in plan.changes] + [render_kept(k) for k in plan.kept]
    if not plan.changes:
        lines.append(NO_CHANGES if not plan.kept else "No changes. The target matches the manifests "
                                                          "(what is kept above stays as it is).")
        return "\n".join(lines)
    counts = ", ".join(f"{_tally(plan.changes, kinds)} to {verb}" for verb, _, kinds in CATEGORIES)
    reextract = f" Re-extract after apply: {', '.join(plan.reextract)}" if plan.reextract else ""
    rebuild = f" Rebuild after apply: {', '.join(plan.rebuild_derived)}." if plan.rebuild_derived else ""
    lines.append(f"Plan: {counts}.{reextract}{'.' if reextract and rebuild else ''}{rebuild}")
    return "\n".join(lines)


def render_applied(changes: tuple[Change, ...]) -> str:
    counts = ", ".join(f"{_tally(changes, kinds)} {done}" for _, done, kinds in CATEGORIES)
    return f"Apply complete: {counts}."


def _tally(changes: tuple[Change, ...], kinds: tuple[str, ...]) -> int:
    return sum(1 for c in changes if c.kind in kinds)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
