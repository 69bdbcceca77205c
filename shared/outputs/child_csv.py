"""`extract --out csv` of a model with child tables: one CSV file per table, as the target holds
them (`<source>.<model>__<column>.csv` beside the model's), the items flattened like the loader's."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shared.config.child_tables import ChildTable, walk
from shared.config.models import PiiRule
from shared.extract.child_shape import child_rows
from shared.outputs.writers import SUFFIX, CsvFile, RecordWriter


def child_csv_columns(child: ChildTable) -> list[str]:
    """Links, position, then the child's columns its PII rules keep."""
    kept = [name for name, column in child.columns.items() if not (column.pii and column.pii.rule == PiiRule.drop)]
    return list(child.link_columns()) + kept


class CsvTables(RecordWriter):
    """The model's CSV file and its child tables' files, written, kept or discarded together."""

    def __init__(self, folder: str | os.PathLike, name: str, columns: list[str], key: list[str],
                 children: tuple[ChildTable, ...]):
        schema = name.rsplit(".", 1)[0]
        self._key, self._children = key, children
        self._parent = CsvFile(Path(folder) / f"{name}{SUFFIX['csv']}", columns)
        self._files = {child.name: CsvFile(Path(folder) / f"{schema}.{child.name}{SUFFIX['csv']}",
                                           child_csv_columns(child))
                       for child in walk(children)}

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        self._parent.write(records)
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in self._files}
        for record in records:
            links = {name: record.get(name) for name in self._key}
            for child in self._children:
                child_rows(child, record, links, rows)
        for name, found in rows.items():
            self._files[name].write(found)

    def close(self) -> None:
        for writer in [self._parent, *self._files.values()]:
            writer.close()

    def abort(self) -> None:
        for writer in [self._parent, *self._files.values()]:
            writer.abort()
