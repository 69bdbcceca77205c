"""Write dispositions: how a model's run lands in its table (`write:`, `deletes:`, `history:`;
docs/loading.md). Each is a strategy the Loader asks three things: where batches are written (the
live table, or the run's staging table), what each row carries besides the model's columns, and
what happens once, at the end of a successful run, in one transaction: nothing, a swap, an append,
a soft-delete pass or a versioning pass. Ends are idempotent: the queue chain may deliver the end of
a model twice, and a run killed before its end leaves the table as it was.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from shared.config.models import ColumnType, ModelBase
from shared.load.staging import swap_in_all
from shared.target.columns import (
    CURRENT,
    DELETED_AT,
    HASH_LENGTH,
    LOADED_AT,
    ROW_HASH,
    RUN_ID,
    VALID_FROM,
    VALID_TO,
    StoredColumn,
)
from shared.target.dialects import column_type

if TYPE_CHECKING:
    from shared.load.children import ChildTables


@dataclass
class EndCounts:
    """What a model's end did to rows already in the table, for the run summary."""

    replaced: int = 0    # rows of the earlier run a replace swapped out
    appended: int = 0    # rows an append added
    marked: int = 0      # rows soft-deleted (deletes: soft)
    cleared: int = 0     # soft-deleted rows that came back
    opened: int = 0      # versions opened (history: scd2): new keys and changed rows
    closed: int = 0      # versions closed: changed rows, and vanished ones with deletes: soft

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass
class End:
    """A model's end: the run, its time (naive UTC on databases without zones), and whether the
    run saw the whole source (not limited, not incremental, not a dropped file)."""

    run_id: str
    now: datetime
    complete: bool
    counts: EndCounts = field(default_factory=EndCounts)


def _plain_table(live: sa.Table, name: str, keep: Sequence[str] | None = None,
                 key: Sequence[str] | None = None, extra: Sequence[sa.Column] = ()) -> sa.Table:
    """A table of `live`'s columns (those in `keep`), with `key` as its primary key."""
    columns = []
    for column in live.columns:
        if keep is not None and column.name not in keep:
            continue
        primary = column.primary_key if key is None else column.name in key
        columns.append(sa.Column(column.name, column.type, primary_key=primary, nullable=not primary,
                                 autoincrement=False))
    return sa.Table(name, sa.MetaData(), *columns, *extra, schema=live.schema)


class Disposition:
    """How rows reach the table; the default (merge without soft deletes) upserts and ends with nothing."""

    name: ClassVar[str]
    staged: ClassVar[bool] = False   # batches go to the run's staging table, applied at the end

    def __init__(self, model: ModelBase, live: sa.Table):
        self.model, self.live = model, live
        self.key = list(model.primary_key)
        self.children: ChildTables | None = None   # the model's child tables, which follow its rows

    def staging_table(self, name: str) -> sa.Table | None:
        return None

    def writer_table(self) -> sa.Table:
        """The table batches are written to when they are not staged."""
        return self.live

    def row_extras(self, columns: list[Sequence[Any]], count: int) -> list[Sequence[Any]]:
        """Columns every written row carries after the run id and load time (table order)."""
        return []

    def with_children(self, rows: list[tuple], digests: dict[tuple, str], key: Callable[[tuple], tuple]) -> list[tuple]:
        """The batch's rows once their children are known (`ChildBatch.digests`, by parent key)."""
        return rows

    def end(self, engine: sa.Engine, staging: sa.Table | None, end: End) -> None:
        """Apply the run at its end (called once the whole run succeeded)."""


class Merge(Disposition):
    """Upsert by key. With `deletes: soft`, the end clears `_kspyder_deleted_at` on rows the run
    loaded and, after a complete run, sets it on rows it did not; the upsert itself never writes it."""

    name = "merge"

    def writer_table(self) -> sa.Table:
        if self.model.deletes != "soft":
            return self.live
        keep = [c.name for c in self.live.columns if c.name != DELETED_AT]
        return _plain_table(self.live, self.live.name, keep)

    def end(self, engine: sa.Engine, staging: sa.Table | None, end: End) -> None:
        if self.model.deletes != "soft":
            return
        live = self.live
        deleted, run = live.c[DELETED_AT], live.c[RUN_ID]
        with engine.begin() as connection:
            end.counts.cleared += connection.execute(
                sa.update(live).where(run == end.run_id, deleted.is_not(None)).values({DELETED_AT: None})).rowcount
            if end.complete:
                end.counts.marked += connection.execute(
                    sa.update(live).where(deleted.is_(None), sa.or_(run != end.run_id, run.is_(None)))
                    .values({DELETED_AT: end.now})).rowcount
            if self.children is not None:   # child rows marked and cleared with their parent
                self.children.follow_deletes(connection, live)


class Replace(Disposition):
    """The run's rows replace the table in one swap (`staging.swap_in`); with a key, the later record
    of a key wins within the run."""

    name = "replace"
    staged = True

    def staging_table(self, name: str) -> sa.Table:
        return self.live.to_metadata(sa.MetaData(), name=name)

    def end(self, engine: sa.Engine, staging: sa.Table | None, end: End) -> None:
        if staging is not None:   # the child tables' staging swapped in with the parent's, in one step
            children = [] if self.children is None else self.children.swap_pairs()
            end.counts.replaced += swap_in_all(engine, [(staging, self.live), *children], {RUN_ID: end.run_id})[0]


class Append(Disposition):
    """Every run's rows are kept: the run's staging table is appended whole at its end, once (an end
    delivered again finds the run's rows there and appends nothing); child rows with them, under the
    run's id, which joins their key."""

    name = "append"
    staged = True

    def staging_table(self, name: str) -> sa.Table:
        return self.live.to_metadata(sa.MetaData(), name=name)

    def end(self, engine: sa.Engine, staging: sa.Table | None, end: End) -> None:
        if staging is None:
            return
        live = self.live
        names = [c.name for c in staging.columns]
        done = sa.exists(sa.select(sa.literal(1)).select_from(live).where(live.c[RUN_ID] == end.run_id))
        selected = sa.select(*[sa.literal(end.run_id, live.c[RUN_ID].type) if n == RUN_ID else staging.c[n]
                               for n in names]).where(~done)
        with engine.begin() as connection:
            if not connection.execute(sa.select(done)).scalar():   # else an end applied before: nothing to add
                if self.children is not None:
                    self.children.append_run(connection, end.run_id)
                inserted = connection.execute(sa.insert(live).from_select(names, selected)).rowcount
                end.counts.appended += inserted if inserted >= 0 else _count(
                    connection, live, live.c[RUN_ID] == end.run_id)
        _drop(engine, staging, self.children)


class Scd2(Disposition):
    """`history: scd2`: the run's rows are staged (one per key, with a hash of their values); at the
    end, in one transaction, a changed row's current version is closed and a new one opened, a new
    key opens its first, an unchanged one is only marked seen (`_kspyder_run_id`), and after a
    complete run with `deletes: soft` the current versions the run did not see are closed. Child
    rows are part of the hash, and each version opened gets its own (`ChildTables.open_versions`)."""

    name = "scd2"
    staged = True

    def staging_table(self, name: str) -> sa.Table:
        keep = [c.name for c in self.live.columns if c.name not in (VALID_FROM, VALID_TO, CURRENT, ROW_HASH)]
        hashed = sa.Column(ROW_HASH, column_type(StoredColumn(ROW_HASH, ColumnType.string, HASH_LENGTH)))
        return _plain_table(self.live, name, keep, self.key, [hashed])

    def row_extras(self, columns: list[Sequence[Any]], count: int) -> list[Sequence[Any]]:
        return [[row_hash(row) for row in zip(*columns, strict=True)]]

    def with_children(self, rows: list[tuple], digests: dict[tuple, str], key: Callable[[tuple], tuple]) -> list[tuple]:
        """The row hash (last column of the staged row) folded with its children's digest."""
        if not digests:
            return rows
        out = []
        for row in rows:
            digest = digests.get(key(row))
            out.append(row if digest is None else (*row[:-1], row_hash((row[-1], digest))))
        return out

    def end(self, engine: sa.Engine, staging: sa.Table | None, end: End) -> None:
        if staging is None:
            return
        live, stage = self.live, staging
        current = live.c[CURRENT] == sa.true()
        same_key = sa.and_(*[stage.c[k] == live.c[k] for k in self.key])
        close = {VALID_TO: end.now, CURRENT: False}
        changed = sa.update(live).where(current, sa.exists(
            sa.select(sa.literal(1)).select_from(stage).where(same_key, stage.c[ROW_HASH] != live.c[ROW_HASH])))
        unchanged = sa.update(live).where(current, sa.exists(
            sa.select(sa.literal(1)).select_from(stage).where(same_key, stage.c[ROW_HASH] == live.c[ROW_HASH])))
        versions = live.alias("kspyder_version")
        has_current = sa.exists(sa.select(sa.literal(1)).select_from(versions).where(
            *[versions.c[k] == stage.c[k] for k in self.key], versions.c[CURRENT] == sa.true()))
        model_columns = [c.name for c in stage.columns if c.name not in (RUN_ID, LOADED_AT, ROW_HASH)]
        names = [*model_columns, RUN_ID, LOADED_AT, VALID_FROM, VALID_TO, CURRENT, ROW_HASH]
        opened = sa.select(*[stage.c[n] for n in model_columns], sa.literal(end.run_id, live.c[RUN_ID].type),
                           stage.c[LOADED_AT], sa.literal(end.now, live.c[VALID_FROM].type),
                           sa.null(), sa.true(), stage.c[ROW_HASH]).where(~has_current)
        run = live.c[RUN_ID]
        with engine.begin() as connection:
            end.counts.closed += connection.execute(changed.values(close)).rowcount
            connection.execute(unchanged.values({RUN_ID: end.run_id}))
            inserted = connection.execute(sa.insert(live).from_select(names, opened)).rowcount
            end.counts.opened += inserted if inserted >= 0 else _count(
                connection, live, sa.and_(live.c[VALID_FROM] == end.now, run == end.run_id))
            if self.children is not None:
                self.children.open_versions(connection, live, end.run_id)
            if end.complete and self.model.deletes == "soft":
                end.counts.closed += connection.execute(
                    sa.update(live).where(current, sa.or_(run != end.run_id, run.is_(None))).values(close)).rowcount
        _drop(engine, staging, self.children)


def row_hash(values: Sequence[Any]) -> str:
    """A version's fingerprint: its fitted values, each tagged with its type, so that 1 and '1' differ."""
    text = "\x1f".join("\x00" if v is None else f"{type(v).__name__}:{v}" for v in values)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _count(connection: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    """Rows an INSERT ... SELECT wrote, where the driver does not say (psycopg answers -1)."""
    return int(connection.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one())


def _drop(engine: sa.Engine, staging: sa.Table, children: ChildTables | None = None) -> None:
    """After the end's transaction: the parent's staging first, whose absence says the end is done."""
    with engine.begin() as connection:
        staging.drop(connection, checkfirst=True)
    if children is not None:
        children.discard()


DISPOSITIONS: dict[str, type[Disposition]] = {cls.name: cls for cls in (Merge, Replace, Append, Scd2)}


def disposition_for(model: ModelBase, live: sa.Table) -> Disposition:
    """The model's disposition; `history: scd2` is a merge that keeps versions."""
    name = "scd2" if model.history == "scd2" else model.write_mode
    try:
        return DISPOSITIONS[name](model, live)
    except KeyError:
        raise ValueError(f"unknown write disposition '{name}'; expected one of: "
                         f"{', '.join(n for n in DISPOSITIONS if n != 'scd2')}") from None


def staged(model: ModelBase) -> bool:
    """A run of the model writes into its staging table, applied at the end (replace, append, scd2)."""
    return model.history == "scd2" or model.write_mode in ("replace", "append")


def has_end(model: ModelBase) -> bool:
    """A run of the model has an end that changes the table (`Loader.finish`): staged, or soft deletes."""
    return staged(model) or model.deletes == "soft"
