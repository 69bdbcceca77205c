"""Paging by position (page number or record offset): every page's request is known up front.

That makes random access possible, so the extractor may fetch several pages at once. The stop
rule therefore reads only the page itself and its index, never the order pages were fetched in.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

from shared.config.models import OffsetPagination, PageNumberPagination
from ..errors import PaginationError
from ..types import PageRequest, PageResponse
from .base import Paginator
from .paths import as_count, dotted_get


class _Positional(Paginator):
    random_access: ClassVar[bool] = True

    def init_request(self, request: PageRequest) -> None:
        request.params.update(self._params(0))

    def request_for_page(self, first: PageRequest, index: int) -> PageRequest:
        request = first.copy()
        request.params.update(self._params(index))
        return request

    def _point_at_next(self, request: PageRequest) -> None:
        request.params.update(self._params(self.pages_seen))

    @abstractmethod
    def _params(self, index: int) -> dict[str, Any]:
        """The paging parameters of page `index` (0-based), merged over the model's own params."""


class PageNumberPaginator(_Positional):
    """`?page=1`, `?page=2`, … with an optional page size."""

    type_name: ClassVar[str] = "page_number"
    config: PageNumberPagination

    def _params(self, index: int) -> dict[str, Any]:
        params: dict[str, Any] = {self.config.param: self.config.start + index}
        if self.config.size_param:
            params[self.config.size_param] = self.config.size
        return params

    def _advance(self, response: PageResponse, records: list) -> bool:
        self.total_pages = self._stated_pages(response.body)
        if self.total_pages is not None and self.pages_seen >= self.total_pages:
            return False
        if not records:
            return False
        size = self.config.size
        return size is None or len(records) >= size

    def _stated_pages(self, body: Any) -> int | None:
        """A page count stated outright wins; else one derived from the records total; else the last known."""
        if self.config.total_pages_path:
            pages = as_count(dotted_get(body, self.config.total_pages_path, None))
            if pages is not None:
                return pages
        if self.stated_total is not None and self.config.size:
            return math.ceil(self.stated_total / self.config.size)
        return self.total_pages


class OffsetPaginator(_Positional):
    """`?offset=0&limit=100`, `?offset=100&limit=100`, …"""

    type_name: ClassVar[str] = "offset"
    config: OffsetPagination

    def _params(self, index: int) -> dict[str, Any]:
        return {self.config.offset_param: self._offset(index), self.config.limit_param: self.config.limit}

    def _offset(self, index: int) -> int:
        return self.config.start + index * self.config.limit

    def _advance(self, response: PageResponse, records: list) -> bool:
        limit, total = self.config.limit, self.stated_total
        if len(records) > limit:
            # The next offset would re-read records this page already returned: duplicates, not data.
            raise PaginationError(f"page {self.pages_seen} has {len(records)} records for {self.config.limit_param}={limit}: "
                                  f"the API ignores '{self.config.limit_param}', so offsets would overlap")
        if total is not None:
            self.total_pages = math.ceil(max(total - self.config.start, 0) / limit)
            if self._offset(self.pages_seen - 1) + limit >= total:
                return False
        return len(records) >= limit
