"""Child tables: a model's `type: table` columns as the tables their nested lists load into.

A child table `<model>__<column>` holds one row per item of the list, with the columns that link
it to its parent row (the model's key columns, then the position of every enclosing item), the
item's own `_kspyder_position` and the declared columns; its key is the links plus the position.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.config.models import MAX_IDENTIFIER, Column, ColumnType

POSITION = "_kspyder_position"
SCALAR_ITEM = "value"   # a list of scalars: each item is read as this column
_POSITION_COLUMN = Column(type=ColumnType.integer)


def position_of(column: str) -> str:
    """The link column a grandchild row carries for the position of its parent item."""
    return f"{POSITION}_{column}"


@dataclass(frozen=True)
class ChildTable:
    """One child table of a model, and its own child tables. `pii_scan` and `pii_terms` are the
    model's: PII rules and the free-text scan apply inside a child as on its parent."""

    name: str                               # the table: order__lines
    column: str                             # the column of its parent that declares it: lines
    path: str                               # dotted path to the list in the parent's record
    links: tuple[tuple[str, Column], ...]   # the model's key columns, then enclosing positions
    columns: dict[str, Column]              # the declared columns, without nested tables
    tables: tuple[ChildTable, ...]
    where: tuple[str, ...] = ()             # its key path under the model: ("columns", "lines")
    pii_scan: Any = None
    pii_terms: list[str] = field(default_factory=list)
    primary_key: tuple[str, ...] = ()       # of the declared columns: none (the stripper's view)

    @property
    def key(self) -> list[str]:
        return [name for name, _ in self.links] + [POSITION]

    def link_columns(self) -> dict[str, Column]:
        return {**dict(self.links), POSITION: _POSITION_COLUMN}


def child_tables(model_name: str, model: Any) -> tuple[ChildTable, ...]:
    """The child tables of a model (a ModelBase); none without a key (validation refuses them)."""
    if not model.primary_key or not model.tables:
        return ()
    links = tuple((key, model.columns[key]) for key in model.primary_key if key in model.columns)
    return tuple(_child(model_name, name, column, links, model, ("columns", name))
                 for name, column in model.tables.items())


def _child(parent: str, name: str, column: Column, links: tuple[tuple[str, Column], ...], model: Any,
           where: tuple[str, ...]) -> ChildTable:
    table = f"{parent}__{name}"
    declared = {n: c for n, c in (column.columns or {}).items() if c.type != ColumnType.table}
    nested_links = links + ((position_of(name), _POSITION_COLUMN),)
    nested = tuple(_child(table, n, c, nested_links, model, where + ("columns", n))
                   for n, c in (column.columns or {}).items() if c.type == ColumnType.table)
    return ChildTable(table, name, column.path or name, links, declared, nested, where, model.pii_scan,
                      list(model.pii_terms))


def walk(tables: tuple[ChildTable, ...]) -> Iterator[ChildTable]:
    """Every child table of the tree, parents before their children."""
    for table in tables:
        yield table
        yield from walk(table.tables)


def table_names(model_name: str, model: Any) -> list[str]:
    """The model's own table and every child table's name."""
    return [model_name] + [child.name for child in walk(child_tables(model_name, model))]


def child_table_issues(model_name: str, model: Any, documents: bool) -> Iterator[tuple[tuple[str, ...], str]]:
    """(column path under the model, message) for every child table the model cannot have."""
    for name, column in model.tables.items():
        where = ("columns", name)
        if documents:
            yield where, "type: table applies to store: sql sources: a document keeps its nested lists"
            continue
        if not model.primary_key:
            yield where, ("a type: table column needs the model's primary_key: its key columns link each "
                          "child row to its parent row")
            continue
        yield from _issues(f"{model_name}__{name}", column, where, set(model.primary_key), (name,))


def _issues(table: str, column: Column, where: tuple[str, ...], taken: set[str],
            enclosing: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if len(table) > MAX_IDENTIFIER:
        yield where, (f"child table '{table}' is longer than {MAX_IDENTIFIER} characters: shorten the model "
                      "or column name")
    for child_name, child in (column.columns or {}).items():
        path = where + ("columns", child_name)
        if child_name in taken:
            yield path, (f"child column '{child_name}' collides with the key column '{child_name}' every row of "
                         f"{table} carries from its parent: rename it (path: keeps reading the same field)")
        elif child_name.startswith(POSITION):
            yield path, f"child column '{child_name}': names starting with {POSITION} are kspyder's"
        elif child.type == ColumnType.table and child_name in enclosing:
            yield path, (f"type: table column '{child_name}' has the name of an enclosing one: its rows "
                         "would carry two position columns of one name")
        elif child.type == ColumnType.table:
            yield from _issues(f"{table}__{child_name}", child, path, taken | {position_of(enclosing[-1])},
                               enclosing + (child_name,))
