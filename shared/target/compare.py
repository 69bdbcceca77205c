"""Compare what the manifests want with what the live database has, table by table.

Shared by `plan` (to decide create/alter/replace) and by the loader's drift check (to refuse
writing into a table of the wrong shape). Reflection goes through SQLAlchemy's inspector; types
are compared in their logical form (`dialects.logical_type`), never as DDL text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from shared.target.columns import StoredColumn
from shared.target.dialects import logical_type
from shared.target.meta_table import STATE_TABLE
from shared.target.meta_table import TABLE as META_TABLE
from shared.target.staging_names import is_staging


@dataclass(frozen=True)
class TableDiff:
    """How a live table differs from the desired one. Empty lists: it matches."""

    schema: str
    table: str
    exists: bool
    added: list[StoredColumn] = field(default_factory=list)       # in the manifest, not in the table
    removed: list[str] = field(default_factory=list)              # in the table, not in the manifest
    retyped: list[tuple[str, str, str]] = field(default_factory=list)   # (column, live, desired)
    key_change: tuple[list[str], list[str]] | None = None         # (live, desired) primary key

    @property
    def matches(self) -> bool:
        return self.exists and not (self.added or self.removed or self.retyped or self.key_change)

    @property
    def needs_replace(self) -> bool:
        """Type and key changes are not done in place: the table is rebuilt (data is expendable)."""
        return bool(self.retyped or self.key_change)

    def reasons(self) -> list[str]:
        out = [f"type of {c} changes {live} -> {want}" for c, live, want in self.retyped]
        if self.key_change:
            out.append(f"primary key changes ({', '.join(self.key_change[0]) or 'none'}) -> "
                       f"({', '.join(self.key_change[1]) or 'none'})")
        return out


def live_tables(inspector: sa.Inspector, schema: str) -> list[str]:
    """The schema's tables, less the staging tables of loads and swaps (`staging.py`), a run's
    private work, and the `_kspyder` metadata and `_kspyder_state` cursor tables (`meta_table.py`):
    never a table to plan, alter or drop."""
    if schema not in inspector.get_schema_names():
        return []
    return [t for t in inspector.get_table_names(schema=schema)
            if not is_staging(t) and t not in (META_TABLE, STATE_TABLE)]


_REFLECTED = "kspyder.reflected_tables"   # this module's entry in the inspector's own cache
Reflection = tuple[list[Any], list[str]]   # a table's reflected columns and its primary key's columns


def reflect_tables(inspector: sa.Inspector, schema: str, tables: list[str]) -> None:
    """Reflect the columns and primary keys of `tables` together (PostgreSQL: three queries for all
    of them instead of three per table) into the inspector's cache, where `table_reflection` and
    `compare_table` read them, as fresh as SQLAlchemy's own cached reflection."""
    if not tables:
        return
    columns = inspector.get_multi_columns(schema=schema, filter_names=tables)
    keys = inspector.get_multi_pk_constraint(schema=schema, filter_names=tables)
    cache: dict[tuple[str, str], Reflection] = inspector.info_cache.setdefault(_REFLECTED, {})
    for (found_in, table), reflected in columns.items():
        key = keys.get((found_in, table))
        cache[(schema, table)] = (list(reflected), list(key.get("constrained_columns") or []) if key else [])


def table_reflection(inspector: sa.Inspector, schema: str, table: str) -> Reflection:
    """The table's columns and primary key: from `reflect_tables` when it covered the table, else
    reflected on their own."""
    cached: Reflection | None = inspector.info_cache.get(_REFLECTED, {}).get((schema, table))
    if cached is not None:
        return cached
    columns = list(inspector.get_columns(table, schema=schema))
    return columns, list(inspector.get_pk_constraint(table, schema=schema).get("constrained_columns") or [])


def compare_table(inspector: sa.Inspector, schema: str, table: str, desired: list[StoredColumn]) -> TableDiff:
    if table not in live_tables(inspector, schema):
        return TableDiff(schema, table, exists=False, added=list(desired))
    dialect = inspector.dialect.name
    reflected, live_key = table_reflection(inspector, schema, table)
    live = {c["name"]: logical_type(c["type"], dialect) for c in reflected}
    wanted = {c.name: c for c in desired}
    added = [c for c in desired if c.name not in live]
    removed = [name for name in live if name not in wanted]
    retyped = []
    for name, want in wanted.items():
        have = live.get(name)
        if have is not None and ((have.type, have.length, have.precision, have.scale)
                                 != (want.type, want.length, want.precision, want.scale)):
            retyped.append((name, have.describe(), want.describe()))
    desired_key = [c.name for c in desired if c.primary_key]
    key_change = (live_key, desired_key) if list(live_key) != desired_key else None
    return TableDiff(schema, table, True, added, removed, retyped, key_change)
