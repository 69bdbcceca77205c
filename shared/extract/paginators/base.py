"""The paginator contract the extractor codes against, and the checks every paging style shares."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from ..errors import PaginationError
from ..types import PageRequest, PageResponse
from .paths import as_count, dotted_get


class Paginator(ABC):
    """Decides, page by page, whether there is a next page and how to ask for it.

    One instance serves one model for one run and holds that run's state (pages seen, tokens and
    URLs already followed): the extractor builds a fresh one per run so a long-lived worker never
    carries a cursor or a loop-detection set over into the next run.
    """

    type_name: ClassVar[str]
    random_access: ClassVar[bool] = False  # page k's request can be built without page k-1's response

    def __init__(self, config: Any):
        self.config = config
        self.has_next = True
        self.total_pages: int | None = None
        self.stated_total: int | None = None
        self.pages_seen = 0
        self.planned = True   # random access: the requests `request_for_page` made still reach every record
        self._last_content: bytes | None = None

    def init_request(self, request: PageRequest) -> None:   # noqa: B027 - an optional hook, empty by default
        """Set the first page's parameters; styles driven by the response need none."""

    def resume(self, request: PageRequest, index: int) -> None:
        """Take up at page `index` (0-based), asked for by `request`, as if the pages before it had
        been taken in: a queue step sees one page with a fresh paginator."""
        self.pages_seen = index

    def update_state(self, response: PageResponse, records: list) -> None:
        """Take in one page, in page order; decides `has_next` from the page's own content and index."""
        self.pages_seen += 1
        self._check_not_repeated(response, records)
        total = as_count(dotted_get(response.body, self.config.total_path, None)) if self.config.total_path else None
        if total is not None:
            self.stated_total = total
        self.has_next = self._advance(response, records)

    def update_request(self, request: PageRequest) -> None:
        """Point `request` at the next page, in sequential mode."""
        if not self.has_next:
            raise RuntimeError(f"{self.type_name} paginator asked for a page after the last one "
                               f"(page {self.pages_seen})")
        self._point_at_next(request)

    def request_for_page(self, first: PageRequest, index: int) -> PageRequest:
        """A new request for page `index` (0-based), for fetching pages concurrently."""
        raise NotImplementedError(f"{self.type_name} pagination has no random access: each page depends on the last")

    @abstractmethod
    def _advance(self, response: PageResponse, records: list) -> bool:
        """Whether another page follows the one just counted in `pages_seen`."""

    @abstractmethod
    def _point_at_next(self, request: PageRequest) -> None:
        ...

    def _check_not_repeated(self, response: PageResponse, records: list) -> None:
        """An API that ignores the paging parameters serves page 1 forever. The last page's bytes
        are kept (one page, never persisted) rather than a digest: comparing two different pages
        stops at their first differing byte, where hashing reads all of every page."""
        content = response.content or None
        repeated = content is not None and content == self._last_content and len(records) > 0
        self._last_content = content
        if repeated:
            raise PaginationError(f"page {self.pages_seen} ({response.url}) repeats page {self.pages_seen - 1}: "
                                  f"the API ignores the paging parameters")


def shorten(token: str, width: int = 20) -> str:
    """A token prefix for messages: enough to recognise a loop, short enough to keep logs readable."""
    return token if len(token) <= width else token[:width] + "…"
