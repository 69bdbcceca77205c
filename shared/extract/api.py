"""REST API connector: the page step (`page_step.py`) in a loop, HTTP through the throttled client.

Pages whose requests do not depend on the previous response (page_number, offset) are fetched
`concurrency` at a time and still taken in, in order; the window caps memory at `concurrency` pages.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Literal
from urllib.parse import urljoin

import requests

from shared.config.models import ApiModel, ApiSource
from shared.config.parents import is_dependent
from shared.config.project import ModelRef
from shared.errors import PaginationError
from shared.extract.auth import build_auth
from shared.extract.base import GenericExtractor, RawPage
from shared.extract.http_client import HttpClient
from shared.extract.incremental import ApiWalk, Window
from shared.extract.page_step import PageStep, Position, StepPage, records_at
from shared.extract.parent_lanes import walk_pages
from shared.extract.parent_state import ParentCursors, Partitions
from shared.extract.parent_walk import WalkStep
from shared.extract.quota import QuotaGate
from shared.extract.request_body import model_request
from shared.extract.types import PageRequest
from shared.pii.stripper import PiiStripper

log = logging.getLogger("kspyder.extract")
__all__ = ["ApiExtractor", "model_url", "new_client", "records_at"]   # records_at: where probe reads it


def model_url(source: ApiSource, model: ApiModel) -> str:
    if model.path.startswith(("http://", "https://")):
        return model.path
    return urljoin(source.base_url + "/", model.path.lstrip("/"))


class ApiExtractor(GenericExtractor):
    def __init__(self, ref: ModelRef, stripper: PiiStripper, limit: int | None = None,
                 client: HttpClient | None = None, *, scan_process: bool = False, pii_key: str | None = None,
                 redaction: str = "[REDACTED]"):
        """`pii_key`, `redaction`: how an incremental child names a parent whose key has a PII rule."""
        super().__init__(ref, stripper, limit, scan_process=scan_process)
        self.pii_key, self.redaction = pii_key, redaction
        source, model = ref.source, ref.model
        if not isinstance(source, ApiSource) or not isinstance(model, ApiModel):
            raise TypeError(f"{ref.qualified} is a {source.type} model, not an API model")
        self.source, self.model = source, model
        self.pagination = source.pagination_for(model)
        self.on_shortfall = self.pagination.on_shortfall
        self._own_client = client is None
        self.client = client or new_client(ref.source_name, source)

    def refresh_stats(self) -> None:
        snapshot = self.client.stats.snapshot()
        self.stats.requests = snapshot.get("requests", 0)
        self.stats.retries = snapshot.get("retries", 0)
        self.stats.throttled = snapshot.get("throttled", 0)

    def close(self) -> None:
        self.refresh_stats()
        if self._own_client:
            self.client.close()

    def first_request(self) -> PageRequest:
        return model_request(model_url(self.source, self.model), self.model)

    def page_step(self) -> PageStep:
        """The model's page step, shared with the queue chain's Fetch."""
        return PageStep(self.source, self.model, self.pagination, self.client, self.first_request())

    def walk_step(self) -> WalkStep | None:
        """A child (or for_each) model's walk over its parents, shared with the chain; None for the others."""
        if not is_dependent(self.model):
            return None
        walk = WalkStep(self.ref.source_name, self.source, self.ref.name, self.client, model_url)
        if self.model.incremental is not None:
            walk.cursors = self.parent_cursors(walk)
        return walk

    def parent_cursors(self, walk: WalkStep, now: datetime | None = None) -> ParentCursors:
        """Each parent's cursor of an incremental child, from those committed (`committed_partitions`)."""
        if self.model.incremental is None:
            raise TypeError(f"{self.ref.qualified} is not incremental")
        partitions = Partitions(walk, self.pii_key, self.redaction)
        return ParentCursors(self.model.incremental, self.committed_partitions, partitions, self.ref.qualified, now)

    def raw_pages(self) -> Iterator[RawPage]:
        walk = self.walk_step()
        if walk is not None:
            yield from walk_pages(walk, self.source.throttle.concurrency, self.stats.warn,
                                  f"kspyder-{self.ref.source_name}")
            if walk.cursors is not None:
                self.stats.truncated_by = "incremental"
            return
        if self.model.incremental is None:
            yield from self._paging(self.page_step())
            return
        cursors = ApiWalk(self.model.incremental, self.committed, self.ref.qualified)
        position = 0
        for window in cursors.windows:
            cursors.stopped = False
            step = self.window_step(cursors, window)
            held: RawPage | None = None   # a page waits for the next to know whether it ends the window
            for raw in self._paging(step):
                if held is not None:
                    yield held
                count = len(raw.records)
                raw.records = cursors.take(raw.records, position)
                position += count
                raw.checkpoint = cursors.checkpoint(window, window_done=False)
                held = raw
                if cursors.stopped:
                    break
            if held is not None:
                held.checkpoint = cursors.checkpoint(window, window_done=True)
                yield held
        self.stats.truncated_by = "incremental"   # a total counts a request's records, not those kept

    def window_step(self, cursors: ApiWalk, window: Window) -> PageStep:
        """The page step of one window of an incremental walk: its first request carries the cursor."""
        first = cursors.request(self.first_request(), window)
        return PageStep(self.source, self.model, self.pagination, self.client, first)

    def _paging(self, step: PageStep) -> Iterator[RawPage]:
        """The pages of one paging sequence from `step`'s first request."""
        at = step.start()   # a fresh paginator per run: no state leaks between runs
        first = at.request.copy() if at.request is not None else None
        yield self._raw(step.step(at), at)
        paginator = at.paginator
        if first is not None and paginator.random_access and self.source.throttle.concurrency > 1:
            yield from self._parallel(step, at, first)
        yield from self._sequential(step, at)
        warning = paginator.cap_warning(self.ref.qualified)
        if warning is not None:
            self.stats.truncated_by = paginator.truncated_by
            self.stats.warn(warning)

    def _raw(self, page: StepPage, at: Position) -> RawPage:
        if at.paginator.stated_total is not None:
            self.stats.stated_total = at.paginator.stated_total
        return RawPage(page.records, page.url)

    def _sequential(self, step: PageStep, at: Position) -> Iterator[RawPage]:
        while not at.done:
            yield self._raw(step.step(at), at)

    def _parallel(self, step: PageStep, at: Position, first: PageRequest) -> Iterator[RawPage]:
        """Pages fetched `concurrency` ahead and taken in, in order, until the run is over or a page
        falls short before the end (then `at` goes on page by page)."""
        paginator = at.paginator
        window: deque[Future] = deque()
        width = self.source.throttle.concurrency
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"kspyder-{self.ref.source_name}") as pool:
            try:
                next_index = index = paginator.pages_seen
                while not at.done and paginator.planned:
                    limit = min(x for x in (paginator.planned_pages(), paginator.max_pages, next_index + width)
                                if x is not None)
                    while next_index < limit and len(window) < width:
                        window.append(pool.submit(self.client.fetch, paginator.request_for_page(first, next_index),
                                                  step.rules))
                        next_index += 1
                    if not window:
                        raise PaginationError(f"{self.ref.qualified}: the paginator expects page {index + 1} "
                                              f"but the API stated {paginator.total_pages} pages")
                    yield self._raw(step.take(at, window.popleft().result()), at)
                    index += 1
            finally:
                for future in window:
                    future.cancel()


def new_client(source_name: str, source: ApiSource, on_rate_limit: Literal["wait", "raise"] = "wait",
               quota: QuotaGate | None = None) -> HttpClient:
    session = requests.Session()
    auth = build_auth(source.auth, session, base_url=source.base_url)
    return HttpClient(source=source_name, throttle=source.throttle, auth=auth,
                      headers=source.headers, on_rate_limit=on_rate_limit, session=session,
                      auth_origin=source.base_url, allowed_origins=source.allowed_origins,
                      secret_headers=source.secret_headers, quota=quota)
