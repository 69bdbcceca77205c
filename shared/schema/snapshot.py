"""What the live database holds, as far as kspyder is concerned, and its fingerprint.

Only managed tables count (those with the `_kspyder_run_id` column): anything else in a schema
is someone else's and is never compared, altered or dropped. The fingerprint lets a saved plan
prove, at apply time, that the database is still the one the plan was computed against.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa

from shared.target.columns import RUN_ID, StoredColumn
from shared.target.compare import live_tables, reflect_tables, table_reflection
from shared.target.dialects import SYSTEM_SCHEMAS, logical_type
from shared.target.ownership import schema_owner


# Catalogs of the supported servers: never candidates for "a removed source" (and slow to reflect).
@dataclass(frozen=True)
class TableShape:
    """A managed table reduced to what decides a plan: column names, logical types, primary key."""

    columns: tuple[tuple[str, str], ...]   # (name, logical type), sorted by name
    key: tuple[str, ...]                   # in constraint order

    @classmethod
    def of(cls, columns: Iterable[StoredColumn]) -> TableShape:
        columns = list(columns)
        return cls(tuple(sorted((c.name, c.describe()) for c in columns)),
                   tuple(c.name for c in columns if c.primary_key))

    def as_json(self) -> dict:
        return {"columns": [list(c) for c in self.columns], "key": list(self.key)}


@dataclass
class SchemaState:
    name: str
    listed: bool                                              # the database knows the schema
    managed: dict[str, TableShape] = field(default_factory=dict)
    foreign: list[str] = field(default_factory=list)         # tables and views kspyder does not manage
    owner: str | None = None                                  # the project marked in it (ownership.py)

    @property
    def holds_anything(self) -> bool:
        return bool(self.managed or self.foreign)


def _connection_of(inspector: sa.Inspector) -> sa.Connection:
    """The plan inspects inside one transaction: ownership reads and savepoints need its connection."""
    if not isinstance(inspector.bind, sa.Connection):
        raise TypeError("a schema snapshot needs an inspector of a connection, not of an engine")
    return inspector.bind


def reflect_schema(inspector: sa.Inspector, schema: str) -> SchemaState:
    if schema not in inspector.get_schema_names():
        return SchemaState(schema, listed=False)
    owner = schema_owner(_connection_of(inspector), schema, inspector.get_table_names(schema=schema))
    state = SchemaState(schema, listed=True, foreign=sorted(inspector.get_view_names(schema=schema)), owner=owner)
    dialect = inspector.dialect.name
    tables = live_tables(inspector, schema)
    reflect_tables(inspector, schema, tables)
    for table in tables:
        reflected, key = table_reflection(inspector, schema, table)
        if RUN_ID not in {c["name"] for c in reflected}:
            state.foreign.append(table)
            continue
        columns = sorted((c["name"], logical_type(c["type"], dialect).describe()) for c in reflected)
        state.managed[table] = TableShape(tuple(columns), tuple(key))
    return state


def orphan_schemas(inspector: sa.Inspector, known: Iterable[str], scope: Iterable[str] = (),
                   owner: str | None = None) -> list[SchemaState]:
    """Schemas marked as `owner`'s, holding managed tables, that no source describes: the traces of
    this project's removed sources. Another project's schemas, and schemas no project marked, are
    never candidates (None: this project has no id yet, so it owns nothing). `scope` (globs)
    narrows the search further.
    """
    known, patterns = set(known), list(scope)
    found: list[SchemaState] = []
    if owner is None:
        return found
    for name in sorted(inspector.get_schema_names()):
        if name in known or name.lower() in SYSTEM_SCHEMAS:
            continue
        if patterns and not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        if _owner_of_other(inspector, name) != owner:
            continue   # read before reflecting: on a shared server most schemas are someone else's
        state = reflect_schema(inspector, name)
        if state.managed:
            found.append(state)
    return found


def _owner_of_other(inspector: sa.Inspector, schema: str) -> str | None:
    """The mark of a schema that may be someone else's, None when unreadable: another project may
    drop it between the listing and this read (a savepoint keeps PostgreSQL's transaction usable)."""
    connection = _connection_of(inspector)
    try:
        with connection.begin_nested():
            return schema_owner(connection, schema, sa.inspect(connection).get_table_names(schema=schema))
    except sa.exc.DBAPIError:
        return None


Shapes = dict[str, dict[str, TableShape]]


def shapes_of(states: Iterable[SchemaState]) -> Shapes:
    return {s.name: dict(s.managed) for s in states if s.managed}


def fingerprint(shapes: Shapes, owned: Iterable[str] = ()) -> str:
    """sha256 over schema names, managed tables, their columns' logical types and keys, sorted, and
    the schemas marked as this project's (so a plan that marks one is recognised once applied)."""
    canonical = {schema: {table: shape.as_json() for table, shape in sorted(tables.items())}
                 for schema, tables in sorted(shapes.items()) if tables}
    return digest({"tables": canonical, "owned": sorted(set(owned))})


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
