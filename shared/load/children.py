"""Child table rows of a batch, written in the parent batch's transaction.

A shaped parent record carries each child table's items as a list (`extract/child_shape.py`). A
batch's child rows replace the children of the batch's parent keys: every child table (nested ones
included, all linked by the model's key) deletes the rows of those keys and inserts the new ones,
in the transaction that upserts the parents, so a reader never sees orphans or duplicates, and an
item removed from a parent's list is gone once the parent is loaded again.

A parent staged for its run stages its children too: replaced whole at the end, they are swapped
in with it (`staged_run`, `swap_pairs`); appended (`append_run`) or versioned (`open_versions`),
they join the table under the parent row's run or version, which is part of their key.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from shared.config.child_tables import ChildTable, walk
from shared.config.project import ModelRef
from shared.extract.child_shape import child_rows
from shared.load.dispositions import row_hash
from shared.load.fit import RecordMisfit, RowFitter
from shared.load.upsert import BatchWriter, batch_writer
from shared.target.child_tables import ChildKeep, child_desired_columns, child_keep, child_table, ref_children
from shared.target.columns import CURRENT, DELETED_AT, META_COLUMNS, RUN_ID, VALID_FROM, StoredColumn
from shared.target.compare import TableDiff, compare_table
from shared.target.staging_names import staging_name, stale_staging


class ChildMisfit(ValueError):
    """A child row that cannot be written; the message names the table, row and column, no value."""


@dataclass(frozen=True)
class _Target:
    child: ChildTable
    table: sa.Table      # where the rows go: the live table, or the run's staging table
    live: sa.Table
    fitter: RowFitter
    writer: BatchWriter


@dataclass(frozen=True)
class _TableRows:
    target: _Target
    keys: list[tuple]    # the parent keys whose rows in this table the batch replaces
    rows: list[tuple]


@dataclass(frozen=True)
class ChildBatch:
    """A parent batch's child rows, table by table; for a versioned parent, a digest of each
    parent key's child rows, which joins its row hash (a changed line opens a new version)."""

    rows: list[_TableRows]
    digests: dict[tuple, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(found.rows) for found in self.rows)


class ChildTables:
    """The child tables of one model, as the loader writes them. `staged_run`: the parent is
    staged for this run (its table replaced whole at the run's end), and the children with it:
    each into its own staging table, swapped in with the parent's (`swap_pairs`)."""

    def __init__(self, engine: sa.Engine, ref: ModelRef, redaction: str, naive_datetimes: bool,
                 staged_run: str | None = None):
        self.ref, self.engine, self.staged_run = ref, engine, staged_run
        self.key = list(ref.model.primary_key)
        dialect = engine.dialect
        self._roots = ref_children(ref)
        self._targets: list[_Target] = []
        self._desired: dict[str, list[StoredColumn]] = {}
        self.keep = keep = child_keep(ref)
        for child in walk(ref_children(ref)):
            desired = child_desired_columns(child, redaction, keep)
            self._desired[child.name] = desired
            table = child_table(sa.MetaData(), ref.source_name, child, redaction, dialect.name, keep)
            null_on_error = {name for name, column in child.columns.items() if column.on_error == "null"}
            fitter = RowFitter([c for c in desired if c.name not in META_COLUMNS], null_on_error,
                               naive_datetimes=naive_datetimes)
            # rows are written without `_kspyder_deleted_at`: a parent's fresh children are not deleted;
            # staged without their parent's version, which its end gives them
            written = child_table(sa.MetaData(), ref.source_name, child, redaction, dialect.name, ChildKeep())
            if staged_run is not None:
                written = written.to_metadata(sa.MetaData(), name=staging_name(child.name, staged_run))
            # plain inserts (COPY on PostgreSQL): the batch's children were deleted just before
            self._targets.append(_Target(child, written, table, fitter, batch_writer(written, [], dialect)))

    @classmethod
    def of(cls, engine: sa.Engine, ref: ModelRef, redaction: str, naive_datetimes: bool,
           staged_run: str | None = None) -> ChildTables | None:
        """None for a model without child tables: the loader's path stays as it was."""
        return cls(engine, ref, redaction, naive_datetimes, staged_run) if ref_children(ref) else None

    # ------------------------------------------------------------------ staged with the parent
    def stage(self) -> None:
        """Drop the staging tables other runs left, create this run's (as the parent's `stage`)."""
        if self.staged_run is None:
            return
        schema = self.ref.source_name
        names = sa.inspect(self.engine).get_table_names(schema=schema)
        for target in self._targets:
            for stale in stale_staging(names, target.child.name, self.staged_run):
                with self.engine.begin() as connection:
                    connection.execute(sa.schema.DropTable(sa.Table(stale, sa.MetaData(), schema=schema),
                                                           if_exists=True))
            with self.engine.begin() as connection:
                connection.execute(sa.schema.CreateTable(target.table, if_not_exists=True))

    def discard(self) -> None:
        """A failed run drops its staging tables (the next run's `stage` does too)."""
        if self.staged_run is None:
            return
        with self.engine.begin() as connection:
            for target in self._targets:
                target.table.drop(connection, checkfirst=True)

    def delete_tagged(self, connection: sa.Connection, tag: str) -> None:
        """A redelivered page of the queue chain: its earlier child rows go, as the parent's do."""
        if self.staged_run is None:
            return
        for target in self._targets:
            connection.execute(sa.delete(target.table).where(target.table.c[RUN_ID] == tag))

    def follow_deletes(self, connection: sa.Connection, parent: sa.Table) -> None:
        """`deletes: soft`, in the parent's end: a child row is marked when its parent is (with the
        parent's time), and cleared when its parent came back without carrying its lists (a CSV drop's
        row: a reloaded parent's children are written anew, unmarked)."""
        for target in self._targets:
            child = target.live
            same = sa.and_(*[parent.c[k] == child.c[k] for k in self.key])
            gone = sa.select(parent.c[DELETED_AT]).where(same, parent.c[DELETED_AT].is_not(None)).scalar_subquery()
            connection.execute(sa.update(child).where(child.c[DELETED_AT].is_(None), sa.exists(
                sa.select(sa.literal(1)).select_from(parent).where(same, parent.c[DELETED_AT].is_not(None))))
                .values({DELETED_AT: gone}))
            connection.execute(sa.update(child).where(child.c[DELETED_AT].is_not(None), sa.exists(
                sa.select(sa.literal(1)).select_from(parent).where(same, parent.c[DELETED_AT].is_(None))))
                .values({DELETED_AT: None}))

    def append_run(self, connection: sa.Connection, run_id: str) -> None:
        """`write: append`, in the parent's end: each table's staged rows join it under the run's
        id, part of their key (so that an end applied twice fails rather than doubles them)."""
        for target in self._targets:
            live, stage = target.live, target.table
            names = [c.name for c in stage.columns]
            selected = sa.select(*[sa.literal(run_id, live.c[RUN_ID].type) if n == RUN_ID else stage.c[n]
                                   for n in names])
            connection.execute(sa.insert(live).from_select(names, selected))

    def open_versions(self, connection: sa.Connection, parent: sa.Table, run_id: str) -> None:
        """`history: scd2`, in the parent's end after its versions are opened: the staged rows of each
        current version the run saw join the table under the version's start, unless that version
        has them already (opened by an earlier run, or by this end applied before). Closing a
        version needs nothing here: its children stay with it."""
        for target in self._targets:
            live, stage = target.live, target.table
            names = [c.name for c in stage.columns]
            there = live.alias("kspyder_child")
            held = sa.exists(sa.select(sa.literal(1)).select_from(there).where(
                there.c[VALID_FROM] == parent.c[VALID_FROM],
                *[there.c[c.name] == stage.c[c.name] for c in stage.primary_key.columns]))
            joined = stage.join(parent, sa.and_(*[parent.c[k] == stage.c[k] for k in self.key],
                                                parent.c[CURRENT] == sa.true(), parent.c[RUN_ID] == run_id))
            selected = sa.select(*[sa.literal(run_id, live.c[RUN_ID].type) if n == RUN_ID else stage.c[n]
                                   for n in names], parent.c[VALID_FROM]).select_from(joined).where(~held)
            connection.execute(sa.insert(live).from_select([*names, VALID_FROM], selected))

    def swap_pairs(self) -> list[tuple[sa.Table, sa.Table]]:
        """(staging, live) of every child table, for `staging.swap_in_all` beside the parent's pair."""
        return [] if self.staged_run is None else [(target.table, target.live) for target in self._targets]

    @property
    def nulled(self) -> int:
        return sum(target.fitter.nulled for target in self._targets)

    def drift(self, inspector: sa.Inspector) -> Iterator[TableDiff]:
        """Each child table compared with the manifest, as the loader compares the parent's."""
        for target in self._targets:
            yield compare_table(inspector, self.ref.source_name, target.child.name, self._desired[target.child.name])

    def prepare(self, records: list[dict[str, Any]], parent_rows: list[tuple], key_indexes: list[int],
                meta: tuple[str, datetime]) -> ChildBatch:
        """The child rows of the batch's records (the last record of a key wins, as for parents),
        fitted and bound. `parent_rows` are the parent's rows as written (in the order of the keys'
        first records; an appended model's are not one per key), `key_indexes` where the model key is
        in them: their keys scope each child table's delete. A record without a child table's list
        (a CSV drop's row) leaves that table's rows of its key alone."""
        last: dict[tuple, dict[str, Any]] = {}
        for record in records:
            last[tuple(record.get(name) for name in self.key)] = record
        get_key = itemgetter(*key_indexes)
        keyed = (get_key(row) if len(key_indexes) > 1 else (get_key(row),) for row in parent_rows)
        written = list(dict.fromkeys(keyed))   # one per key, in the order of their first rows, as `last`
        items: dict[str, list[dict[str, Any]]] = {target.child.name: [] for target in self._targets}
        owners: dict[str, list[int]] = {name: [] for name in items}   # the parent (index in `last`) of each item
        keys: dict[str, list[tuple]] = {}
        for root in self._roots:
            holding = [i for i, record in enumerate(last.values()) if root.column in record]
            for child in walk((root,)):   # a root's nested tables are replaced with it
                keys[child.name] = [written[i] for i in holding]
        versioned = self.keep.version == VALID_FROM
        for i, record in enumerate(last.values()):
            links = {name: record.get(name) for name in self.key}
            before = {name: len(found) for name, found in items.items()} if versioned else {}
            for child in self._roots:   # nested child tables: child_rows recurses
                child_rows(child, record, links, items)
            for name, count in before.items():
                owners[name] += [i] * (len(items[name]) - count)
        rows = []
        parts: list[list[str]] = [[] for _ in written]
        for target in self._targets:
            found = items[target.child.name]
            try:
                columns = target.fitter.columns(found)
            except RecordMisfit as exc:
                hint = " (set on_error: null on the column to load NULL instead)" if exc.nullable else ""
                raise ChildMisfit(f"child table {target.child.name}, row #{exc.index} of the batch, "
                                  f"{exc}{hint}") from None
            if versioned:
                for owner, values in zip(owners[target.child.name], zip(*columns, strict=True), strict=True):
                    parts[owner].append(row_hash((target.child.name, *values)))
            count = len(found)
            columns += [(meta[0],) * count, (meta[1],) * count]   # META_COLUMNS, in the table's order
            bound = list(zip(*target.writer.bind_columns(columns), strict=True))
            rows.append(_TableRows(target, keys[target.child.name], bound))
        carried = [any(root.column in record for root in self._roots) for record in last.values()]
        digests = {key: row_hash(part) for key, part, has in zip(written, parts, carried, strict=True)
                   if versioned and has}
        return ChildBatch(rows, digests)

    def write(self, connection: sa.Connection, batch: ChildBatch) -> None:
        """In the parent's transaction: the children of the batch's keys deleted, the new ones inserted."""
        for found in batch.rows:
            table = found.target.table
            if found.keys and len(self.key) == 1:
                connection.execute(sa.delete(table).where(table.c[self.key[0]].in_([key[0] for key in found.keys])))
            elif found.keys:
                columns = sa.tuple_(*(table.c[name] for name in self.key))
                connection.execute(sa.delete(table).where(columns.in_(found.keys)))
            if found.rows:
                found.target.writer.write(connection, found.rows)


def check_child_drift(children: ChildTables, engine: sa.Engine, schema: str) -> None:
    """Refuse to load a model whose child tables `plan` has not brought in line with the manifest."""
    from shared.load.loader import TargetDriftError, drift_reasons  # the loader's errors, raised as its own

    for diff in children.drift(sa.inspect(engine)):
        qualified = f"{schema}.{diff.table}"
        if not diff.exists:
            raise TargetDriftError(f"table {qualified} does not exist: run `main.py plan`")
        if not diff.matches:
            raise TargetDriftError(f"table {qualified} does not match the manifest "
                                   f"({'; '.join(drift_reasons(diff))}): run `main.py plan`")
