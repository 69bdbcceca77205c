"""An incremental model in an embedded run: where it starts, and the cursor each load batch commits."""
from __future__ import annotations

import sqlalchemy as sa

from shared.config.parents import is_dependent
from shared.config.project import ModelRef
from shared.extract.base import GenericExtractor
from shared.extract.cursor import Cursor
from shared.extract.partition_cursor import partition_cursors
from shared.extract.types import Page
from shared.load.cursor_state import WHOLE, ensure_state_table, list_state, read_state, write_state
from shared.load.loader import Then


def is_incremental(ref: ModelRef) -> bool:
    return getattr(ref.model, "incremental", None) is not None


def start_cursor(engine: sa.Engine, ref: ModelRef, extractor: GenericExtractor) -> None:
    """Before extracting: the source's state table exists, and the extractor starts after the
    cursor committed with the rows of the runs before."""
    if not is_incremental(ref):
        return
    ensure_state_table(engine, ref.source_name)
    with engine.connect() as connection:
        if is_dependent(ref.model):   # a child: a cursor per parent (`parent_state.py`)
            extractor.committed_partitions = {s.partition: s.value() for s in list_state(
                connection, ref.source_name, ref.name) if s.partition != WHOLE}
            return
        saved = read_state(connection, ref.source_name, ref.name)
    extractor.start_after(saved.value() if saved is not None else None)


def cursor_then(ref: ModelRef, run_id: str, pages: list[Page]) -> Then | None:
    """The cursor the last of `pages` allows (None: none moves it), written with their last batch."""
    per_parent = partition_cursors([p.checkpoint for p in pages])
    if per_parent:
        def each(connection: sa.Connection) -> None:
            for partition, cursor in per_parent.items():
                write_state(connection, ref.source_name, ref.name, cursor, run_id, partition)
        return each
    found: Cursor | None = next((p.checkpoint for p in reversed(pages) if p.checkpoint is not None), None)
    if found is None or not isinstance(found, Cursor):
        return None
    cursor = found

    def then(connection: sa.Connection) -> None:
        write_state(connection, ref.source_name, ref.name, cursor, run_id)
    return then
