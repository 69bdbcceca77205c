"""Write extracted pages into the target table, idempotently, one transaction per batch.

A run can fail anywhere and be run again: with a primary key every row is an upsert (the later
load of a key wins), so re-running pages, in any order, converges to the same table, and a batch
that failed left nothing behind (its transaction rolled back). A keyless model's run is loaded into
a run-private staging table and swapped in whole at its end, so readers never see two runs' rows.
Portable: the dialect-specific statements live in `upsert.py` and `staging.swap_in`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from shared.config.project import ModelRef
from shared.detect.redact_message import safe_excerpt
from shared.load.children import ChildBatch, ChildMisfit, ChildTables, check_child_drift
from shared.load.dispositions import End, EndCounts, disposition_for
from shared.load.fit import RecordMisfit, RowFitter
from shared.load.page_lock import PageLockTimeout, lock_page, unlock_page
from shared.load.upsert import batch_writer
from shared.target.columns import META_COLUMNS, RUN_ID
from shared.target.compare import TableDiff, compare_table
from shared.target.dialects import stores_timezones
from shared.target.staging_names import staging_name, stale_staging
from shared.target.tables import desired_columns, model_table

MAX_ERROR = 200
RUN_ID_LENGTH = 36   # the width of the _kspyder_run_id column


class LoadError(Exception):
    """A page could not be loaded. Messages name model, key and column, never a value."""


class TargetDriftError(LoadError):
    """The live table is not what the manifest describes: loading would fail or misplace data."""


Then = Callable[[sa.Connection], None]   # written in a batch's transaction, after its rows (a cursor)


@dataclass(frozen=True)
class PreparedBatch:
    """Rows ready for the writer (fitted, one per key), and where their records were in the page."""
    rows: list[tuple]
    first: int      # position of the batch's first record in the page given to `batches`
    records: int    # records the rows came from (duplicate keys make rows fewer)
    children: ChildBatch | None = None   # the child tables' rows, written in the same transaction
    then: Then | None = None   # committed with the rows or not at all: an incremental model's cursor

    def and_then(self, then: Then | None) -> PreparedBatch:
        return self if then is None else replace(self, then=then)


@dataclass
class LoadStats:
    rows: int = 0       # rows written (after keeping the last of duplicate keys within a batch)
    batches: int = 0    # batches committed
    nulled: int = 0     # values set to NULL by `on_error: null`
    deleted: int = 0    # rows of the earlier run replaced by finish()'s swap (write: replace)
    ended: EndCounts = field(default_factory=EndCounts)   # what finish() did to rows already there


class Loader:
    """Loads one model's pages into its table.

    With a primary key, each batch is upserted: inserted, or updating every column of the row
    with the same key; the later record of a key wins, within a page as across pages.

    Without a key nothing identifies a row across runs, so the model is replaced per run: `load`
    appends rows to the run's staging table (`staging.py`; created by `stage`, or on the first
    load), and `finish`, called once the whole run succeeded, swaps it in whole (`swap_in`):
    readers see the previous run's rows until then, never a mix or an empty table. A failed or
    killed run leaves the previous table untouched; its staging table is dropped by `discard`, or
    by the next run's `stage`. The queue chain loads a page with `load_page`, which tags its rows
    so that a redelivered page replaces its rows in the staging table instead of appending them
    twice; the swap writes the run id in their place.

    Every written row gets `_kspyder_run_id` and `_kspyder_loaded_at` (UTC, per batch); an update
    refreshes both. Memory stays bounded by one batch of prepared rows: pages are never kept.
    """

    def __init__(self, engine: sa.Engine, ref: ModelRef, *, redaction: str, run_id: str, batch_size: int = 1000):
        if not run_id or len(run_id) > RUN_ID_LENGTH:
            raise LoadError(f"{ref.qualified}: run id must be 1 to {RUN_ID_LENGTH} characters")
        if batch_size < 1:
            raise LoadError(f"{ref.qualified}: batch size must be at least 1")
        self.engine, self.ref, self.run_id, self.batch_size = engine, ref, run_id, batch_size
        self.stats = LoadStats()
        dialect = engine.dialect
        self._naive = not stores_timezones(dialect.name)   # the database keeps no offset: write naive UTC
        self._desired = desired_columns(ref, redaction)
        self._table = model_table(sa.MetaData(), ref, redaction, dialect.name)
        stored = [c for c in self._desired if c.name not in META_COLUMNS]
        null_on_error = {name for name, column in ref.model.columns.items() if column.on_error == "null"}
        self._fitter = RowFitter(stored, null_on_error, naive_datetimes=self._naive)
        self._key = self._fitter.key
        self._key_indexes = [self._fitter.names.index(k) for k in self._key]
        # where the model key is in a row, also when the table does not enforce it (append): child rows' links
        self._link_indexes = [self._fitter.names.index(k) for k in ref.model.primary_key if k in self._fitter.names]
        # replace, append and history write into the run's staging table, applied at the end
        self._disposition = disposition_for(ref.model, self._table)
        self._staging = self._disposition.staging_table(staging_name(ref.name, run_id))
        written = self._staging if self._staging is not None else self._disposition.writer_table()
        self._writer = batch_writer(written, self._key, dialect)
        # child tables: staged and swapped with a staged parent, else written beside its upserts
        self._children = ChildTables.of(engine, ref, redaction, self._naive,
                                        staged_run=run_id if self._staging is not None else None)
        self._disposition.children = self._children
        self._drift_checked = False
        self._staged = False
        self._tag: str | None = None   # written in place of the run id while `load_page` loads a page

    # ------------------------------------------------------------------ drift
    def check_drift(self) -> None:
        """Refuse to write into a table `plan` has not brought in line with the manifest."""
        diff = compare_table(sa.inspect(self.engine), self.ref.source_name, self.ref.name, self._desired)
        if not diff.exists:
            raise TargetDriftError(f"table {self.ref.qualified} does not exist: run `main.py plan`")
        if not diff.matches:
            raise TargetDriftError(f"table {self.ref.qualified} does not match the manifest "
                                   f"({'; '.join(drift_reasons(diff))}): run `main.py plan`")
        if self._children is not None:
            check_child_drift(self._children, self.engine, self.ref.source_name)
        self._drift_checked = True

    def drift_checked_elsewhere(self) -> None:
        """The caller vouches for the table: it passed `check_drift` or a plan recently (the memory of
        checks in `load/drift_memory.py`, in both modes), so loading does not reflect it again."""
        self._drift_checked = True

    # ------------------------------------------------------------------ staging (keyless)
    def stage(self) -> None:
        """Start a keyless model's run: drop the staging tables other runs of the model left (a
        killed run's; one run of a model at a time, so none is still being filled) and create this
        run's, empty, if it does not exist yet. A no-op for a model with a key."""
        if self._staging is None or self._staged:
            return
        schema = self.ref.source_name
        try:
            names = sa.inspect(self.engine).get_table_names(schema=schema)
            for stale in stale_staging(names, self.ref.name, self.run_id):
                with self.engine.begin() as connection:   # a write first: see `_create_staging`
                    connection.execute(sa.schema.DropTable(sa.Table(stale, sa.MetaData(), schema=schema),
                                                           if_exists=True))
            self._create_staging(self._staging)
            if self._children is not None:
                self._children.stage()
        except self._database_errors() as exc:
            raise LoadError(f"{self.ref.qualified}: preparing the run's staging table failed: "
                            f"{summarize_database_error(exc)}") from None
        self._staged = True

    def staged_elsewhere(self) -> None:
        """The caller vouches that this run's staging table exists: an earlier step of the queue
        chain called `stage`. Loads then write into it, and fail if it is gone."""
        self._staged = True

    def discard(self) -> None:
        """A failed run drops its staging table (best effort: the next run's `stage` drops it too)."""
        if self._staging is None:
            return
        try:
            with self.engine.begin() as connection:
                self._staging.drop(connection, checkfirst=True)
            if self._children is not None:
                self._children.discard()
        except self._database_errors():
            pass
        self._staged = False

    def _create_staging(self, staging: sa.Table) -> None:
        """Create if missing; two workers of one run may race to it: the loser finds it made. One
        writing statement, no read before it in its transaction: on SQLite a transaction that read
        first cannot take the write lock once another connection has written."""
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.schema.CreateTable(staging, if_not_exists=True))
        except self._database_errors():
            if not sa.inspect(self.engine).has_table(staging.name, schema=staging.schema):
                raise

    # ------------------------------------------------------------------ load
    def load_page(self, index: int, records: list[dict[str, Any]], then: Then | None = None) -> int:
        """The queue chain's load of the page (or block of pages) starting at `index`. A keyless
        model's rows carry the page in place of the run id in the staging table; the page's rows are
        deleted and written anew in one transaction, under the page's lock (`page_lock`), so that a
        redelivery, or a second live copy of the message, leaves the page in the table once."""
        if self._staging is None:
            return self.load(records) if then is None else self.load(records, then)
        if then is not None:
            raise LoadError(f"{self.ref.qualified}: a model without a key commits nothing with a page")
        if not self._drift_checked:
            self.check_drift()
        self.stage()
        self._tag = page_tag(index)
        lock = f"{self._staging.fullname}/{self._tag}"
        try:
            with self.engine.connect() as connection:
                try:
                    with connection.begin():
                        lock_page(connection, lock)
                        connection.execute(sa.delete(self._staging).where(self._staging.c[RUN_ID] == self._tag))
                        if self._children is not None:
                            self._children.delete_tagged(connection, self._tag)
                        written = 0
                        for batch in self.batches(records):
                            self._writer.write(connection, batch.rows)
                            if batch.children is not None and self._children is not None:
                                self._children.write(connection, batch.children)
                            written += len(batch.rows)
                finally:
                    unlock_page(connection, lock)
        except self._database_errors() as exc:
            raise LoadError(f"{self.ref.qualified}: page {index} failed and was rolled back: "
                            f"{summarize_database_error(exc)}") from None
        except PageLockTimeout as exc:
            raise LoadError(f"{self.ref.qualified}: page {index}: {exc}") from None
        finally:
            self._tag = None
        self.stats.rows += written
        self.stats.batches += 1
        return written

    def load(self, records: list[dict[str, Any]], then: Then | None = None) -> int:
        """Upsert a page; returns the rows written. Checks drift first if the caller has not. `then`
        is written in the transaction of the page's last batch (its own, for an empty page)."""
        written, previous = 0, None   # one batch behind, to know which is the last
        try:
            for batch in self.batches(records):
                if previous is not None:
                    written += self.write(previous)
                previous = batch
        except LoadError:
            if previous is not None:   # written before the misfit stops the page, without `then`
                self.write(previous)
            raise
        if previous is None and then is not None:
            previous = PreparedBatch([], 0, 0)
        return written + (self.write(previous.and_then(then)) if previous is not None else 0)

    def batches(self, records: list[dict[str, Any]]) -> Iterator[PreparedBatch]:
        """The page cut into batches of at most `batch_size`, each checked and converted when the
        caller asks for it (a misfit raises LoadError then). Split from `write` so that a caller can
        prepare the next batch while another thread writes this one (`pipeline.overlap`)."""
        if not self._drift_checked:
            self.check_drift()
        self.stage()
        for start in range(0, len(records), self.batch_size):
            chunk = records[start:start + self.batch_size]
            rows = self._rows(chunk, start)
            children = None if self._children is None else self._child_rows(self._children, chunk, rows)
            if children is not None and children.digests:   # history: scd2 hashes a row with its children
                rows = self._disposition.with_children(rows, children.digests, self._parent_key)
            yield PreparedBatch(rows, start, len(chunk), children)

    def write(self, batch: PreparedBatch) -> int:
        """Write one prepared batch in its own transaction; returns the rows written. Safe to call
        from one other thread than the one preparing batches (the engine's pool is thread-safe)."""
        try:
            with self.engine.begin() as connection:
                if batch.rows:
                    self._writer.write(connection, batch.rows)
                if batch.children is not None and self._children is not None:
                    self._children.write(connection, batch.children)
                if batch.then is not None:
                    batch.then(connection)
        except self._database_errors() as exc:
            raise LoadError(f"{self.ref.qualified}: batch of records {batch.first}-"
                            f"{batch.first + batch.records - 1} of the page failed and was rolled back: "
                            f"{summarize_database_error(exc)}") from None
        self.stats.rows += len(batch.rows)
        self.stats.batches += 1
        return len(batch.rows)

    def _rows(self, records: list[dict[str, Any]], first_position: int) -> list[tuple]:
        nulled_before = self._fitter.nulled
        try:
            columns = self._fitter.columns(records)
        except RecordMisfit as exc:
            hint = " (set on_error: null on the column to load NULL instead)" if exc.nullable else ""
            where = self._describe(records[exc.index], first_position + exc.index)
            raise LoadError(f"{self.ref.qualified}: record {where}, {exc}{hint}") from None
        self.stats.nulled += self._fitter.nulled - nulled_before
        count = len(records)
        extras = self._disposition.row_extras(columns, count)
        columns += [(self._tag or self.run_id,) * count, (self._now(),) * count, *extras]   # in the table's order
        rows = list(zip(*self._writer.bind_columns(columns), strict=True))
        return last_of_each_key(rows, self._key_indexes)

    def _child_rows(self, children: ChildTables, records: list[dict[str, Any]], rows: list[tuple]) -> ChildBatch:
        nulled_before = children.nulled
        try:
            batch = children.prepare(records, rows, self._link_indexes, (self._tag or self.run_id, self._now()))
        except ChildMisfit as exc:
            raise LoadError(f"{self.ref.qualified}: {exc}") from None
        self.stats.nulled += children.nulled - nulled_before
        return batch

    def _parent_key(self, row: tuple) -> tuple:
        return tuple(row[i] for i in self._link_indexes)

    def _describe(self, record: dict[str, Any], position: int) -> str:
        """The record's position: a key is a value too (an e-mail kept as key), so never printed."""
        return f"#{position} of the page"

    def _now(self) -> datetime:
        now = datetime.now(UTC)
        return now.replace(tzinfo=None) if self._naive else now

    def _database_errors(self) -> tuple[type[BaseException], ...]:
        """SQLAlchemy wraps driver errors, except those of the raw cursor used for COPY."""
        dbapi = getattr(self.engine.dialect, "loaded_dbapi", None)
        driver_error = getattr(dbapi, "Error", None)
        return (sa.exc.DBAPIError,) + ((driver_error,) if isinstance(driver_error, type) else ())

    # ------------------------------------------------------------------ finish
    def finish(self, complete: bool = True) -> EndCounts:
        """End of a successful run: the write disposition's end (`dispositions.py`): a staged run is
        swapped in (replace) or appended, versions are opened and closed (scd2), soft deletes marked
        and cleared. `complete`: the run saw the whole source (not limited, incremental or a dropped
        file), which soft deletes require. Done again by a redelivered message of the queue chain, it
        finds the staging table gone and does nothing."""
        end = End(self.run_id, self._now(), complete)
        staging = self._staging
        try:
            if staging is not None:
                self.stage()
                if not sa.inspect(self.engine).has_table(staging.name, schema=staging.schema):
                    if self._disposition.name == "replace":
                        self._check_swapped()
                    return end.counts
            self._disposition.end(self.engine, staging, end)
        except self._database_errors() as exc:
            self.check_drift()   # the live table changed during the run: say so (TargetDriftError)
            what = ("swapping in the run's staging table" if self._disposition.name == "replace"
                    else f"ending the run ({self._disposition.name})")
            raise LoadError(f"{self.ref.qualified}: {what} failed: {summarize_database_error(exc)}") from None
        self.stats.deleted += end.counts.replaced
        self.stats.ended = end.counts
        return end.counts

    def _check_swapped(self) -> None:
        run_id = self._table.c[RUN_ID]
        other = sa.select(sa.literal(1)).select_from(self._table).where(
            sa.or_(run_id != self.run_id, run_id.is_(None))).limit(1)
        with self.engine.connect() as connection:
            if connection.execute(other).first() is not None:
                raise LoadError(f"{self.ref.qualified}: the staging table of run {self.run_id} is gone before "
                                "its swap (dropped by another run of the model?): run again")


def page_tag(index: int) -> str:
    """What a chain-loaded row of a keyless model carries in `_kspyder_run_id` until its swap."""
    return f"page:{index:06d}"


def drift_reasons(diff: TableDiff) -> list[str]:
    """`TableDiff.reasons()` plus added/removed columns, which a load cannot write around either."""
    return (diff.reasons() + [f"column {c.name} is missing" for c in diff.added]
            + [f"column {name} is not in the manifest" for name in diff.removed])


def last_of_each_key(rows: list[tuple], key_indexes: list[int]) -> list[tuple]:
    """One row per key, the last one: PostgreSQL refuses to update a row twice in one statement,
    and "the later record wins" must hold within a batch as it does across batches."""
    if not key_indexes:
        return rows
    key_of: Callable[[tuple], Any] = itemgetter(*key_indexes)
    by_key = {key_of(row): row for row in rows}
    return rows if len(by_key) == len(rows) else list(by_key.values())


def summarize_database_error(exc: BaseException) -> str:
    """The driver's first line, cut before any DETAIL and truncated: database messages can quote
    values, and SQLAlchemy's own message appends the statement's parameters."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    first = lines[0].split("DETAIL")[0].strip() if lines else ""
    first = safe_excerpt(first, MAX_ERROR) if first else ""   # a line can still quote a value: scrubbed
    return f"{type(original).__name__}: {first}" if first else type(original).__name__
