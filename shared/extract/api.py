"""REST API connector: pagination from the registry, HTTP through the throttled client.

Pages whose requests do not depend on the previous response (page_number, offset) are fetched
`concurrency` at a time and still yielded in order; the window caps memory at `concurrency` pages.
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import urljoin

import requests

from shared.config.models import ApiModel, ApiSource
from shared.config.project import ModelRef
from shared.pii import PiiStripper

from .auth import build_auth
from .base import GenericExtractor, RawPage
from .errors import PaginationError, RecordPathError
from .http_client import HttpClient
from .paginators import MISSING, Paginator, create_paginator, dotted_get
from .types import PageRequest, PageResponse

log = logging.getLogger("kspyder.extract")


def records_at(body: Any, path: str | None, url: str) -> list:
    """The record list of a response body: at `path`, or the body itself when it is a list."""
    if path is None:
        if isinstance(body, list):
            return body
        raise RecordPathError(f"response from {url} is not a list: set `records:` to the path of the record list "
                              f"(the body is {_shape(body)})")
    found = dotted_get(body, path, MISSING)
    if found is MISSING:
        raise RecordPathError(f"record path '{path}' not found in the response from {url} (the body is {_shape(body)})")
    if found is None:
        return []
    if not isinstance(found, list):
        raise RecordPathError(f"record path '{path}' in the response from {url} is a {type(found).__name__}, "
                              "expected a list")
    return found


def _shape(body: Any) -> str:
    """What a body is, without its keys: in some APIs the top-level keys are data (ids, e-mails)."""
    if isinstance(body, dict):
        return f"an object of {len(body)} key(s)"
    return "a list" if isinstance(body, list) else type(body).__name__


def model_url(source: ApiSource, model: ApiModel) -> str:
    if model.path.startswith(("http://", "https://")):
        return model.path
    return urljoin(source.base_url + "/", model.path.lstrip("/"))


class ApiExtractor(GenericExtractor):
    def __init__(self, ref: ModelRef, stripper: PiiStripper, limit: int | None = None,
                 client: HttpClient | None = None, *, scan_process: bool = False):
        super().__init__(ref, stripper, limit, scan_process=scan_process)
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
        request = PageRequest(model_url(self.source, self.model), dict(self.model.params), dict(self.model.headers))
        return request

    def raw_pages(self) -> Iterator[RawPage]:
        paginator = create_paginator(self.pagination)  # fresh per run: no state leaks between runs
        request = self.first_request()
        paginator.init_request(request)
        max_pages = self.pagination.max_pages
        response = self.client.fetch(request)
        yield self._accept(paginator, response, 0)
        if paginator.random_access and self.source.throttle.concurrency > 1:
            yield from self._parallel(paginator, request, max_pages)
        else:
            yield from self._sequential(paginator, request, max_pages)

    def _accept(self, paginator: Paginator, response: PageResponse, index: int) -> RawPage:
        records = records_at(response.body, self.model.records, response.url)
        paginator.update_state(response, records)
        if paginator.stated_total is not None:
            self.stats.stated_total = paginator.stated_total
        return RawPage(records, response.url)

    def _capped(self, paginator: Paginator, fetched: int, max_pages: int | None) -> bool:
        if max_pages is not None and fetched >= max_pages and paginator.has_next:
            self.stats.truncated_by = "max_pages"
            self.stats.warn(f"{self.ref.qualified}: stopped at max_pages={max_pages}; the API has more pages")
            return True
        return False

    def _sequential(self, paginator: Paginator, request: PageRequest, max_pages: int | None,
                    index: int = 1) -> Iterator[RawPage]:
        while paginator.has_next and not self._capped(paginator, index, max_pages):
            paginator.update_request(request)
            yield self._accept(paginator, self.client.fetch(request), index)
            index += 1

    def _parallel(self, paginator: Paginator, first: PageRequest, max_pages: int | None) -> Iterator[RawPage]:
        window: deque[Future] = deque()
        width = self.source.throttle.concurrency
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"kspyder-{self.ref.source_name}") as pool:
            try:
                next_index, index = 1, 1
                while paginator.has_next and not self._capped(paginator, index, max_pages):
                    if not paginator.planned:
                        break   # a page fell short before the end: the pages asked for ahead would skip records
                    limit = min(x for x in (paginator.total_pages, max_pages, next_index + width) if x is not None)
                    while next_index < limit and len(window) < width:
                        window.append(pool.submit(self.client.fetch, paginator.request_for_page(first, next_index)))
                        next_index += 1
                    if not window:
                        raise PaginationError(f"{self.ref.qualified}: the paginator expects page {index + 1} "
                                              f"but the API stated {paginator.total_pages} pages")
                    yield self._accept(paginator, window.popleft().result(), index)
                    index += 1
            finally:
                for future in window:
                    future.cancel()
        if paginator.has_next and not paginator.planned:
            yield from self._sequential(paginator, first.copy(), max_pages, index)


def new_client(source_name: str, source: ApiSource, on_rate_limit: Literal["wait", "raise"] = "wait") -> HttpClient:
    session = requests.Session()
    return HttpClient(source=source_name, throttle=source.throttle, auth=build_auth(source.auth, session),
                      headers=source.headers, on_rate_limit=on_rate_limit, session=session,
                      auth_origin=source.base_url, allowed_origins=source.allowed_origins,
                      secret_headers=source.secret_headers)
