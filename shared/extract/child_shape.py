"""Shape a record's nested lists into its child tables' items, beside the record's own columns.

A shaped parent record carries each child table's items as a list under the `type: table` column's
name; an item is shaped like a record (its own columns, and its own nested lists the same way). A
list of scalars reads each item as the column `value`. The loader splits them into rows.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.config.child_tables import POSITION, SCALAR_ITEM, ChildTable, position_of
from shared.errors import ConversionError
from shared.extract.records import RecordShaper, compile_path

Shape = Callable[[Any, int], dict[str, Any]]


class ChildShaper:
    """The child tables of one record shape: `shape(raw, position, out)` adds their items to `out`."""

    def __init__(self, source: str, model: str, children: tuple[ChildTable, ...]):
        self.source, self.model = source, model
        self._children = [(child.column, compile_path(child.path), f"{source}.{child.name}: record #",
                           RecordShaper(source, child.name, child.columns, [], children=child.tables).shape)
                          for child in children]

    def shape(self, raw: Any, position: int, out: dict[str, Any]) -> dict[str, Any]:
        for column, get, named, shape_item in self._children:
            items = get(raw)
            if items is None:
                out[column] = []
                continue
            if isinstance(items, str) and items.lstrip().startswith("["):   # a SQL source's JSON text
                items = _json_list(items)
            if not isinstance(items, list):
                raise ConversionError(f"{self.source}.{self.model}: record #{position}, column '{column}': "
                                      f"expected a list (type: table), got {type(items).__name__}")
            try:
                out[column] = [shape_item(item if isinstance(item, dict) else {SCALAR_ITEM: item}, index)
                               for index, item in enumerate(items)]
            except ConversionError as exc:   # the record, then the item's position and column
                item = str(exc).replace(named, "item #", 1)
                raise ConversionError(f"{self.source}.{self.model}: record #{position}, column '{column}': "
                                      f"{item}") from None
        return out


def with_children(shape: Shape, children: ChildShaper) -> Shape:
    """The record shaper followed by its child tables'."""
    add = children.shape

    def shape_with_children(raw: Any, position: int) -> dict[str, Any]:
        return add(raw, position, shape(raw, position))

    return shape_with_children


def child_rows(child: ChildTable, record: dict[str, Any], links: dict[str, Any],
               rows: dict[str, list[dict[str, Any]]]) -> None:
    """A shaped record's items of `child` as rows of its table (links, position, own columns),
    added to `rows[child.name]`, and their nested items to their own tables' lists."""
    found = rows[child.name]
    for position, item in enumerate(record.get(child.column) or ()):
        found.append({**links, POSITION: position, **item})
        if child.tables:
            nested = {**links, position_of(child.column): position}
            for grandchild in child.tables:
                child_rows(grandchild, item, nested, rows)


def _json_list(text: str) -> Any:
    """The list a JSON text holds (SQLite and MariaDB hand json columns over as text); the text
    itself when it is not JSON, which the caller then reports as not a list."""
    try:
        return json.loads(text)
    except ValueError:
        return text
