"""Paging by position (page number or record offset): every page's request is known up front.

That makes random access possible, so the extractor may fetch several pages at once. The stop
rule therefore reads only the page itself and its index, never the order pages were fetched in.

An API may serve fewer records per page than asked (Jira caps `maxResults` at 100 whatever the
request says): the page size is taken from the first page seen, as the body states it
(`limit_path`/`size_path`) or, when a stated total says more records exist, as the page shows it.
Offsets then advance by the records actually received, and pages planned up front are planned at
that size; a page that holds fewer records than planned before the end makes the plan void
(`planned`), and the extractor goes on page by page.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

from shared.config.models import OffsetPagination, PageNumberPagination
from shared.errors import PaginationError
from shared.extract.paginators.base import Paginator, _count, _flag
from shared.extract.paginators.paths import as_count, dotted_get
from shared.extract.types import PageRequest, PageResponse


class _Positional(Paginator):
    random_access: ClassVar[bool] = True

    def __init__(self, config: OffsetPagination | PageNumberPagination):
        super().__init__(config)
        self.page_size: int | None = self._asked_size()   # what pages hold: as asked, until the first page says
        self._sized = False

    def _own_state(self) -> dict[str, Any]:
        return {"page_size": self.page_size, "sized": self._sized}

    def _restore(self, state: dict[str, Any]) -> None:
        self.page_size = _count(state, "page_size", optional=True)
        self._sized = _flag(state, "sized")

    def init_request(self, request: PageRequest) -> None:
        request.paging(self.config.location).update(self._params(0))

    def request_for_page(self, first: PageRequest, index: int) -> PageRequest:
        request = first.copy()
        request.paging(self.config.location).update(self._params(index))
        return request

    def _point_at_next(self, request: PageRequest) -> None:
        request.paging(self.config.location).update(self._params(self.pages_seen))

    @abstractmethod
    def _params(self, index: int) -> dict[str, Any]:
        """The paging parameters of page `index` (0-based), merged over the model's own params."""

    @abstractmethod
    def _asked_size(self) -> int | None:
        """The page size the manifest asks for (None: not said)."""

    def _size_from(self, response: PageResponse, records: list, served_path: str | None, before: int) -> None:
        """Settle `page_size` on the first page this paginator sees: the size the body states, else
        the page's own size when it is short of what was asked while the stated total says more
        records follow it (`before`: the records that came before this page). Later pages never
        change it: pages planned up front were planned at this size."""
        if self._sized:
            return
        self._sized = True
        served = as_count(dotted_get(response.body, served_path, None)) if served_path else None
        if served:
            self.page_size = served
            return
        count, asked, total = len(records), self.page_size, self.stated_total
        if asked is not None and 0 < count < asked and total is not None and before + count < total:
            self.page_size = count   # a cap the body does not state: the page shows it


class PageNumberPaginator(_Positional):
    """`?page=1`, `?page=2`, … with an optional page size."""

    type_name: ClassVar[str] = "page_number"
    config: PageNumberPagination

    def _asked_size(self) -> int | None:
        return self.config.size

    def _params(self, index: int) -> dict[str, Any]:
        params: dict[str, Any] = {self.config.param: self.config.start + index}
        if self.config.size_param:
            params[self.config.size_param] = self.config.size
        return params

    def _advance(self, response: PageResponse, records: list) -> bool:
        # pages are numbered at the server's size, which a capped page shows: the ones before held as many
        self._size_from(response, records, self.config.size_path, (self.pages_seen - 1) * len(records))
        self.total_pages = self._stated_pages(response.body)
        if not records:
            return False
        if self.total_pages is not None:
            # the server's count wins over a short page: a page capped below the asked size is not the last
            return self.pages_seen < self.total_pages
        size = self.page_size
        return size is None or len(records) >= size

    def _stated_pages(self, body: Any) -> int | None:
        """A page count stated outright wins; else one derived from the records total; else the last known."""
        if self.config.total_pages_path:
            pages = as_count(dotted_get(body, self.config.total_pages_path, None))
            if pages is not None:
                return pages
        if self.stated_total is not None and self.page_size:
            return math.ceil(self.stated_total / self.page_size)
        return self.total_pages


class OffsetPaginator(_Positional):
    """`?offset=0&limit=100`, `?offset=100&limit=100`, …"""

    type_name: ClassVar[str] = "offset"
    config: OffsetPagination

    def __init__(self, config: OffsetPagination):
        super().__init__(config)
        self._next = config.start   # where the next page starts: the records actually received so far

    def _asked_size(self) -> int | None:
        return self.config.limit

    def _own_state(self) -> dict[str, Any]:
        return {**super()._own_state(), "next": self._next}

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        self._next = _count(state, "next")

    @classmethod
    def planned_state(cls, config: Any, request: PageRequest, index: int) -> dict[str, Any]:
        """Page `index` starts at the offset its request asks for (planned at the first page's size)."""
        state = super().planned_state(config, request, index)
        offset = as_count(request.paging(config.location).get(config.offset_param))
        return {**state, "next": offset if offset is not None else state["next"] + index * config.limit}

    def _params(self, index: int) -> dict[str, Any]:
        return {self.config.offset_param: self._offset(index), self.config.limit_param: self.config.limit}

    def _point_at_next(self, request: PageRequest) -> None:
        request.paging(self.config.location).update({self.config.offset_param: self._next,
                                                     self.config.limit_param: self.config.limit})

    def _offset(self, index: int) -> int:
        return self.config.start + index * (self.page_size or self.config.limit)

    def _advance(self, response: PageResponse, records: list) -> bool:
        count, offset = len(records), self._next
        self._size_from(response, records, self.config.limit_path, offset)
        limit = max(self.config.limit, self.page_size or 0)
        if count > limit:
            # the next offset would re-read records this page already returned: duplicates, not data
            raise PaginationError(f"page {self.pages_seen} has {count} records for {self.config.limit_param}="
                                  f"{self.config.limit}: the API ignores '{self.config.limit_param}', "
                                  "so offsets would overlap")
        self._next = offset + count
        total = self.stated_total
        if total is not None:
            self.total_pages = math.ceil(max(total - self.config.start, 0) / (self.page_size or self.config.limit))
            more = count > 0 and self._next < total
        else:
            more = count >= (self.page_size or self.config.limit)
        if more and self._next != self._offset(self.pages_seen):
            self.planned = False   # a short page before the end: pages requested up front would skip records
        return more
