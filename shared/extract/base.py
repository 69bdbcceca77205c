"""The generic extractor: every connector yields raw pages; this class turns them into typed,
PII-stripped pages of standard dict records, one page in memory at a time."""
from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.config.child_tables import child_tables
from shared.config.project import ModelRef
from shared.extract.cursor import Cursor
from shared.extract.gc_threshold import fewer_collections
from shared.extract.reconcile import reconcile
from shared.extract.records import RecordShaper
from shared.extract.types import Page, Shaper
from shared.pii.page_scan import PageScan
from shared.pii.stripper import PiiStripper

log = logging.getLogger("kspyder.extract")


@dataclass
class ExtractStats:
    """What a run reports in its summary. Counters only: no values."""

    pages: int = 0
    records: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    stated_total: int | None = None
    truncated_by: str | None = None          # "limit" or "max_pages" when the run stopped early on purpose
    warnings: list[str] = field(default_factory=list)
    scan_process_peak_kib: int | None = None   # the scan process's own peak RSS (not in summaries)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def warn(self, message: str) -> None:
        with self._lock:
            self.warnings.append(message)
        log.warning(message)

    def snapshot(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


@dataclass
class RawPage:
    records: list[Any]
    url: str | None = None
    resume_after: tuple | None = None
    checkpoint: Any = None   # incremental: the cursor to commit once this page and those before it are loaded


class GenericExtractor(ABC):
    """Subclasses implement `raw_pages`; shaping, PII stripping, limits and stats live here once."""

    on_shortfall = "fail"   # a stated total not reached: "fail" or "warn" (an API source's pagination says)

    def __init__(self, ref: ModelRef, stripper: PiiStripper, limit: int | None = None, *, scan_process: bool = False):
        """`scan_process`: scan free text in a second process (settings `pii.scan_process`)."""
        self.ref = ref
        self.scan_process = scan_process
        self.stripper = stripper
        self.limit = limit
        self.shaper: Shaper
        if ref.documents:   # store: mongo keeps records whole
            from shared.extract.document_shape import DocumentShaper
            self.shaper = DocumentShaper(ref.source_name, ref.name, ref.model.columns, ref.model.primary_key)
        else:
            self.shaper = RecordShaper(ref.source_name, ref.name, ref.model.columns, ref.model.primary_key,
                                       children=child_tables(ref.name, ref.model))
        self.stats = ExtractStats()
        self.committed: Cursor | None = None   # an incremental model's saved cursor (`start_after`)
        self.committed_partitions: dict[str, Cursor] = {}   # an incremental child's, per parent (parent_state.py)

    def start_after(self, committed: Cursor | None) -> None:
        """Start from the target's committed cursor (an incremental model; None: its initial_value)."""
        self.committed = committed

    @property
    def output_columns(self) -> list[str]:
        return self.stripper.output_columns

    @abstractmethod
    def raw_pages(self) -> Iterator[RawPage]:
        """Yield the source's pages of raw records, in order, stopping when the source is exhausted."""

    def close(self) -> None:   # noqa: B027 - an optional hook, empty by default
        """Release connections; safe to call twice."""

    def refresh_stats(self) -> None:   # noqa: B027 - an optional hook, empty by default
        """Copy transport counters (requests, retries, 429s) into `stats`; called after every page."""

    def pages(self) -> Iterator[Page]:
        """Typed, stripped pages in order. With the scan process, a page is held until the next one
        is shaped (its free text is scanned meanwhile); a failure still lets the pages before it out
        first, as without it."""
        scan = self._page_scan()
        shape = self.shaper.shape
        strip = self.stripper.apply_owned if scan is None else self.stripper.apply_owned_unscanned
        position = index = 0
        held: tuple[Page, int] | None = None   # a page whose scan is in flight, and the records up to its end
        with fewer_collections():   # see gc_threshold.py: records never form cycles
            raw_iter = self.raw_pages()
            try:
                while True:
                    try:
                        raw = next(raw_iter, None)
                        if raw is None:
                            break
                        if self.limit is not None and position + len(raw.records) >= self.limit:
                            raw.records = raw.records[: self.limit - position]
                            self.stats.truncated_by = "limit"
                        records = [strip(shape(r, position + i)) for i, r in enumerate(raw.records)]
                        if index == 0:   # before anything is written (value_guard.py)
                            self.stripper.check_first_page(records)
                    except Exception:   # (not an interrupt: that stops at once)
                        if held is not None:
                            yield self._release(held, scan)
                            held = None
                        raise
                    page = Page(self.ref.source_name, self.ref.name, index, records, raw.url, raw.resume_after,
                                raw.checkpoint)
                    index += 1
                    position += len(records)
                    if scan is None:
                        yield self._release((page, position), None)
                    else:
                        previous, held = held, (page, position)
                        if previous is not None:
                            scan.finish(previous[0].records)
                        scan.start(records)
                        if previous is not None:
                            yield self._release(previous, None)
                    if self.stats.truncated_by == "limit":
                        break
                if held is not None:
                    yield self._release(held, scan)
                    held = None
            finally:
                if isinstance(raw_iter, Generator):   # runs its finally now: connections, cursors
                    raw_iter.close()
                if scan is not None:
                    scan.close()
                    self.stats.scan_process_peak_kib = scan.peak_kib
                self.close()
        self._reconcile()

    def _release(self, held: tuple[Page, int], scan: PageScan | None) -> Page:
        """Count a page as extracted (finishing its scan first, when `scan` is given)."""
        page, end = held
        if scan is not None:
            scan.finish(page.records)
        self.stats.pages += 1
        self.stats.records = end
        self.refresh_stats()
        return page

    def _page_scan(self) -> PageScan | None:
        if not self.scan_process or not self.stripper.scanned_columns:
            return None
        return PageScan(self.stripper, self.stats.warn, self.ref.qualified)

    def shape_page(self, raw: list, first_position: int = 0) -> list[dict[str, Any]]:
        """One page's records typed and PII-stripped in this process, as `pages` makes them: what a
        queue-chain Fetch does with the page its step took in."""
        shape, strip = self.shaper.shape, self.stripper.apply_owned
        records = [strip(shape(record, first_position + i)) for i, record in enumerate(raw)]
        if first_position == 0:   # a model's first page (and every API page): before it is written
            self.stripper.check_first_page(records)
        return records

    def records(self) -> Iterator[dict[str, Any]]:
        for page in self.pages():
            yield from page.records

    def _reconcile(self) -> None:
        """Where the API states a total, compare it with what arrived: a silent shortfall is data loss,
        so it fails the model unless the pagination says `on_shortfall: warn` (`reconcile.py`)."""
        warning = reconcile(self.ref.qualified, self.stats.stated_total, self.stats.records,
                            on_shortfall=self.on_shortfall, truncated_by=self.stats.truncated_by)
        if warning is not None:
            self.stats.warn(warning)
