"""A child model's cursor per parent, as its pages carry it to the load that commits it: apart from
the walk itself, so that the run's load side imports no HTTP stack (a SQL-only run stays light)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.extract.cursor import Cursor, highest


@dataclass(frozen=True)
class PartitionCursor:
    """What one lane's page allows: the cursor of its partition, once the page is loaded."""

    partition: str
    cursor: Cursor


def partition_cursors(checkpoints: list[Any]) -> dict[str, Cursor]:
    """The highest cursor of each partition among pages' checkpoints (the others are ignored)."""
    found: dict[str, list[Cursor | None]] = {}
    for checkpoint in checkpoints:
        if isinstance(checkpoint, PartitionCursor):
            found.setdefault(checkpoint.partition, []).append(checkpoint.cursor)
    return {partition: cursor for partition, cursors in found.items() if (cursor := highest(cursors)) is not None}
