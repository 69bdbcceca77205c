"""Incremental models in the queue chain: the cursor a run starts from, each page's cursor, and the
cursor each Load commits with its rows.

Paginate reads the committed cursor once and leaves it, with the run's "now", in a sealed blob: every
Fetch of the run walks the same windows from the same start, and no cursor rides in a message. Each
Fetch leaves, sealed beside its page, what its page allows: a cursor valid once it and every page
before it are loaded (`cp`: sorted pages, SQL chunks, a window's last page) and its own highest
cursor. Pages load in any order, on any worker, so a Load commits, with its rows, the cursor of the
contiguous prefix of loaded pages: the `cp` of its last page that has one when the pages are sorted,
else the end of the last window wholly loaded (with the highest cursor of the pages up to it); and
only if this run committed no later page's already (`advance_state`).
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shared.chain.names import RAW
from shared.chain.pages import ChainError
from shared.chain.sealed import SealError, seal, unseal
from shared.config.models import SqlModel
from shared.config.parents import is_dependent
from shared.config.project import ModelRef
from shared.extract.cursor import KINDS, Cursor, Kind, highest, read_cursor
from shared.extract.partition_cursor import PartitionCursor
from shared.load.cursor_state import WHOLE, advance_state, ensure_state_table, list_state, read_state
from shared.load.loader import Then

if TYPE_CHECKING:
    from shared.chain.steps import Chain

_KIND: dict[str, Kind] = {kind: kind for kind in KINDS}
MID, END, PAGE = "cp", "end", "page"   # a page's blob: a cursor valid mid-window, at a window's end, or none
LANE = "lane"   # a child's page: its parent's partition and cursor


def is_incremental(ref: ModelRef) -> bool:
    return getattr(ref.model, "incremental", None) is not None


def _now(content: dict[str, Any], ref: ModelRef) -> datetime:
    try:
        return datetime.fromisoformat(str(content.get("now")))
    except ValueError:
        raise ChainError(f"{ref.qualified}: the run's start time is not a datetime") from None


def _folder(run_id: str, model: str) -> str:
    source, _, name = model.partition(".")
    return f"starts/{run_id}/{source}/{name}/"


class ChainCursors:
    """One invocation's access to a run's cursors (blobs sealed under the PII key)."""

    def __init__(self, chain: Chain):
        self.chain = chain
        self.key = chain.project.settings.pii.key

    # ------------------------------------------------------------ the run's start
    def begin(self, run_id: str, ref: ModelRef) -> None:
        """Paginate: the state table exists; the committed cursor and now are kept for the run (once:
        a redelivered Paginate keeps the first, which the pages already fetched walked from)."""
        name = _folder(run_id, ref.qualified) + "cursor.json"
        if self.chain.blobs.get(RAW, name) is not None:
            return
        engine = self.chain.engine
        ensure_state_table(engine, ref.source_name)
        content: dict[str, Any]
        if is_dependent(ref.model):   # a child: each parent's cursor (`parent_state.py`)
            with engine.connect() as connection:
                saved_all = list_state(connection, ref.source_name, ref.name)
            content = {"partitions": {s.partition: [s.kind, s.cursor] for s in saved_all if s.partition != WHOLE},
                       "now": datetime.now(UTC).isoformat()}
            self.chain.blobs.create(RAW, name, seal(json.dumps(content).encode(), self.key))
            return
        with engine.connect() as connection:
            saved = read_state(connection, ref.source_name, ref.name)
        committed = saved.value() if saved is not None else None
        content = {"kind": committed.kind if committed else None, "cursor": committed.text() if committed else None,
                   "now": datetime.now(UTC).isoformat()}
        self.chain.blobs.create(RAW, name, seal(json.dumps(content).encode(), self.key))

    def start(self, run_id: str, ref: ModelRef) -> tuple[Cursor | None, datetime]:
        """The committed cursor the run starts from, and the run's now."""
        content = self._read(_folder(run_id, ref.qualified) + "cursor.json", f"{ref.qualified}: the run's cursor")
        if content is None:
            raise ChainError(f"{ref.qualified}: the cursor run {run_id} started from is missing from {RAW}")
        kind = _KIND.get(content.get("kind") or "")
        committed = read_cursor(content.get("cursor"), kind, f"{ref.qualified}: the run's cursor")
        return committed, _now(content, ref)

    def start_partitions(self, run_id: str, ref: ModelRef) -> tuple[dict[str, Cursor], datetime]:
        """A child model's committed cursor per parent the run starts from, and the run's now."""
        what = f"{ref.qualified}: the run's cursors"
        content = self._read(_folder(run_id, ref.qualified) + "cursor.json", what)
        if content is None or not isinstance(content.get("partitions"), dict):
            raise ChainError(f"{ref.qualified}: the cursors run {run_id} started from are missing from {RAW}")
        committed: dict[str, Cursor] = {}
        for partition, saved in content["partitions"].items():
            if not isinstance(saved, list) or len(saved) != 2:
                raise ChainError(f"{what} are not [kind, cursor] pairs")
            cursor = read_cursor(saved[1], _KIND.get(str(saved[0])), what)
            if cursor is not None:
                committed[str(partition)] = cursor
        return committed, _now(content, ref)

    def status(self, run_id: str, ref: ModelRef) -> dict[str, Any]:
        """The model's committed cursor as `GET /api/runs/{id}` shows it: its kind and value, whether this
        run committed it and up to which page, when; an unreadable target shows as such. A child model
        shows how many parents have a cursor, and how many this run committed."""
        try:
            with self.chain.engine.connect() as connection:
                if is_dependent(ref.model):
                    saved_all = [s for s in list_state(connection, ref.source_name, ref.name) if s.partition != WHOLE]
                    return {"partitions": len(saved_all),
                            "by_this_run": sum(1 for s in saved_all if s.run_id == run_id[:36])}
                saved = read_state(connection, ref.source_name, ref.name)
        except sa.exc.SQLAlchemyError as exc:
            return {"error": f"the target could not be read ({type(exc).__name__})"}
        if saved is None:
            return {"cursor": None}
        mine = saved.run_id == run_id[:36]
        return {"kind": saved.kind, "cursor": saved.cursor, "by_this_run": mine,
                "page": saved.position if mine else None,
                "updated_at": saved.updated_at.isoformat() if saved.updated_at else None}

    # ------------------------------------------------------------ pages
    def leave(self, run_id: str, model: str, index: int, checkpoint: Cursor | None, page_high: Cursor | None,
              window_done: bool) -> None:
        """What page `index` allows, for the Loads to read (written before the page is handed to Load)."""
        kind = END if window_done else MID if checkpoint is not None else PAGE
        cursor = checkpoint or page_high
        content = {"cp": checkpoint.text() if checkpoint else None, "high": page_high.text() if page_high else None,
                   "kind": cursor.kind if cursor else None}
        self.chain.blobs.put(RAW, f"{_folder(run_id, model)}{index:06d}.{kind}.json",
                             seal(json.dumps(content).encode(), self.key))

    def leave_partition(self, run_id: str, model: str, index: int, checkpoint: PartitionCursor | None) -> None:
        """What a child's page (one parent's lane, whole) allows: its parent's cursor, once loaded."""
        if checkpoint is None:
            return
        content = {"partition": checkpoint.partition, "kind": checkpoint.cursor.kind,
                   "cursor": checkpoint.cursor.text()}
        self.chain.blobs.put(RAW, f"{_folder(run_id, model)}{index:06d}.{LANE}.json",
                             seal(json.dumps(content).encode(), self.key))

    def then(self, run_id: str, ref: ModelRef, first: int, pages: int) -> Then | None:
        """What a Load writes in the transaction of its rows: the cursor of the prefix of pages loaded
        once they are (None: it moves nothing). Worked out before the transaction, which then holds
        its locks only for the rows and one conditional update."""
        if is_dependent(ref.model):
            return self._lanes_then(run_id, ref, first, pages)
        found = self._prefix_cursor(run_id, ref, first, pages)
        if found is None:
            return None
        position, cursor = found

        def commit(connection: sa.Connection) -> None:
            advance_state(connection, ref.source_name, ref.name, cursor, run_id, position)
        return commit

    def _lanes_then(self, run_id: str, ref: ModelRef, first: int, pages: int) -> Then | None:
        """A child's pages: each is one parent's lane read whole, so a loaded page is its partition's
        whole contiguous prefix; its cursor commits with its rows (unless a later page of this run's
        already moved that partition: `advance_state`)."""
        folder = _folder(run_id, ref.qualified)
        found: list[tuple[str, Cursor, int]] = []
        for index in range(first, first + pages):
            content = self._read(f"{folder}{index:06d}.{LANE}.json", f"{ref.qualified}: the cursor of page {index}")
            if content is None:
                continue
            what = f"{ref.qualified}: the cursor of page {index}"
            cursor = read_cursor(content.get("cursor"), _KIND.get(str(content.get("kind"))), what)
            if cursor is not None and isinstance(content.get("partition"), str):
                found.append((content["partition"], cursor, index))
        if not found:
            return None

        def commit(connection: sa.Connection) -> None:
            for partition, cursor, index in found:
                advance_state(connection, ref.source_name, ref.name, cursor, run_id, index, partition)
        return commit

    def _prefix_cursor(self, run_id: str, ref: ModelRef, first: int, pages: int) -> tuple[int, Cursor] | None:
        loaded = self.chain.ledger.marked_pages(run_id, ref.qualified, "loaded") | set(range(first, first + pages))
        end = 0
        while end in loaded:
            end += 1
        if end == 0:
            return None
        folder = _folder(run_id, ref.qualified)
        kinds: dict[int, str] = {}
        for name in self.chain.blobs.list(RAW, folder):
            stem, _, rest = name[len(folder):].partition(".")
            if stem.isdigit() and rest in (f"{MID}.json", f"{END}.json", f"{PAGE}.json"):
                kinds[int(stem)] = rest.split(".")[0]
        spec = getattr(ref.model, "incremental", None)
        sorted_pages = isinstance(ref.model, SqlModel) or getattr(spec, "sorted", None) == "asc"
        usable = [i for i, kind in kinds.items() if i < end and (kind in (MID, END) if sorted_pages else kind == END)]
        if not usable:
            return None
        last = max(usable)
        with self.chain.engine.connect() as connection:
            saved = read_state(connection, ref.source_name, ref.name)
        if saved is not None and saved.run_id == run_id[:36] and saved.position is not None and saved.position >= last:
            return None   # this run committed as far already
        content = self._page(folder, last, kinds[last], ref)
        cursor = read_cursor(content.get("cp"), None, f"{ref.qualified}: the cursor of page {last}")
        if not sorted_pages:   # the highest cursor of every page up to the window's end counts
            cursor = highest([cursor] + [read_cursor(self._page(folder, i, kinds[i], ref).get("high"), None,
                                                     f"{ref.qualified}: the cursor of page {i}")
                                         for i in kinds if i < last])
        return (last, cursor) if cursor is not None else None

    def _page(self, folder: str, index: int, kind: str, ref: ModelRef) -> dict[str, Any]:
        content = self._read(f"{folder}{index:06d}.{kind}.json", f"{ref.qualified}: the cursor of page {index}")
        return content or {}

    def _read(self, name: str, what: str) -> dict[str, Any] | None:
        data = self.chain.blobs.get(RAW, name)
        if data is None:
            return None
        try:
            content = json.loads(unseal(data, self.key))
        except SealError as exc:
            raise ChainError(f"{what} {exc}") from None
        except ValueError:
            raise ChainError(f"{what} is not JSON") from None
        if not isinstance(content, dict):
            raise ChainError(f"{what} is not an object")
        return content
