"""The API returns everything in one response."""
from __future__ import annotations

from typing import ClassVar

from shared.config.models import NoPagination
from shared.extract.paginators.base import Paginator
from shared.extract.types import PageRequest, PageResponse


class SinglePage(Paginator):
    type_name: ClassVar[str] = "none"
    config: NoPagination

    def _advance(self, response: PageResponse, records: list) -> bool:
        self.total_pages = 1
        return False

    def _point_at_next(self, request: PageRequest) -> None:
        raise AssertionError("unreachable: a single-page paginator never has a next page")
