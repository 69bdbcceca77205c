"""The paginator contract the extractor codes against, and the checks every paging style shares.

A paginator's whole state is one small JSON-able value (`state()`, after singer-sdk's paginator
token) from which `resume` rebuilds it: the queue chain carries it from one invocation to the next in
a sealed start blob, so loop detection and `max_pages` live here alone, for both modes.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar, TypeVar

from shared.errors import PaginationError
from shared.extract.paginators.paths import as_count, dotted_get
from shared.extract.types import PageRequest, PageResponse

SEEN_LIMIT = 64        # loop-detection digests a saved state keeps (the latest ones)
P = TypeVar("P", bound="Paginator")


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
        self.max_pages: int | None = getattr(config, "max_pages", None)
        self._capped = False
        self._last_content: bytes | None = None
        self._last_digest: str | None = None   # a resumed state's last page, when its bytes are gone

    # ------------------------------------------------------------ saved state
    def state(self) -> dict[str, Any]:
        """Everything needed to take up after the last page taken in, as JSON-able values."""
        last = digest(self._last_content) if self._last_content else self._last_digest
        return {"type": self.type_name, "pages_seen": self.pages_seen, "has_next": self.has_next,
                "total_pages": self.total_pages, "stated_total": self.stated_total, "planned": self.planned,
                "capped": self._capped, "last": last, **self._own_state()}

    @classmethod
    def resume(cls: type[P], config: Any, state: dict[str, Any]) -> P:
        """The paginator `state()` described, for `config`. ValueError when the state is not one a
        paginator of this type and config can have written (it is read back from storage)."""
        if not isinstance(state, dict) or state.get("type") != cls.type_name:
            raise ValueError(f"expected a {cls.type_name} paginator state")
        paginator = cls(config)
        paginator.pages_seen = _count(state, "pages_seen")
        paginator.has_next = _flag(state, "has_next")
        paginator.total_pages = _count(state, "total_pages", optional=True)
        paginator.stated_total = _count(state, "stated_total", optional=True)
        paginator.planned = _flag(state, "planned")
        paginator._capped = _flag(state, "capped")
        paginator._last_digest = _digest(state.get("last"), "last", optional=True)
        paginator._restore(state)
        return paginator

    @classmethod
    def planned_state(cls, config: Any, request: PageRequest, index: int) -> dict[str, Any]:
        """The state before page `index` of a random-access pagination, from its request alone (a
        page fetched out of order: the pages before it are someone else's)."""
        return {**cls(config).state(), "pages_seen": index}

    def _own_state(self) -> dict[str, Any]:
        """A style's own part of `state()`."""
        return {}

    def _restore(self, state: dict[str, Any]) -> None:   # noqa: B027 - an optional hook, empty by default
        """Take a style's own part of a saved state back, checking it."""

    # ------------------------------------------------------------ paging
    def init_request(self, request: PageRequest) -> None:   # noqa: B027 - an optional hook, empty by default
        """Set the first page's parameters; styles driven by the response need none."""

    def update_state(self, response: PageResponse, records: list) -> None:
        """Take in one page, in page order; decides `has_next` from the page's own content and index,
        and stops at `max_pages`."""
        self.pages_seen += 1
        self._check_not_repeated(response, records)
        total = as_count(dotted_get(response.body, self.config.total_path, None)) if self.config.total_path else None
        if total is not None:
            self.stated_total = total
        more = self._advance(response, records)
        stated = self._more_stated(response)
        if stated is not None:
            more = self._follow_stated(stated, more, records, response)
        if more and self.max_pages is not None and self.pages_seen >= self.max_pages:
            more, self._capped = False, True
        self.has_next = more

    def planned_pages(self) -> int | None:
        """The pages this run takes when the API stated how many it has: that count, cut at `max_pages`."""
        if self.total_pages is None:
            return None
        return self.total_pages if self.max_pages is None else min(self.total_pages, self.max_pages)

    @property
    def truncated_by(self) -> str | None:
        """"max_pages" when the cap stops the run before the API's last page (seen while stepping, or
        known up front from a stated page count)."""
        over = self.total_pages is not None and self.max_pages is not None and self.total_pages > self.max_pages
        return "max_pages" if self._capped or over else None

    def cap_warning(self, model: str) -> str | None:
        """The one warning a run cut by `max_pages` reports."""
        if self.truncated_by is None:
            return None
        return f"{model}: stopped at max_pages={self.max_pages}; the API has more pages"

    def update_request(self, request: PageRequest) -> None:
        """Point `request` at the next page, in sequential mode."""
        if not self.has_next:
            raise RuntimeError(f"{self.type_name} paginator asked for a page after the last one "
                               f"(page {self.pages_seen})")
        self._point_at_next(request)

    def request_for_page(self, first: PageRequest, index: int) -> PageRequest:
        """A new request for page `index` (0-based), for fetching pages concurrently."""
        raise NotImplementedError(f"{self.type_name} pagination has no random access: each page depends on the last")

    def _more_stated(self, response: PageResponse) -> bool | None:
        """The API's own "more pages follow" flag at `has_more_path` (Stripe `has_more`, GraphQL
        `pageInfo.hasNextPage`); None when the style has none or the page leaves it out or null."""
        path = getattr(self.config, "has_more_path", None)
        if path is None:
            return None
        value = dotted_get(response.body, path, None)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise PaginationError(f"has_more_path '{path}' on page {self.pages_seen} ({response.url}) is a "
                              f"{type(value).__name__}, expected true or false")

    def _follow_stated(self, stated: bool, more: bool, records: list, response: PageResponse) -> bool:
        """The API's flag decides over the style's own rule (a short page is not the last when the
        API says more follow), except that an empty page ends the run: an API saying "more" on an
        empty page would otherwise be asked forever."""
        return stated and len(records) > 0

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
        if self._last_digest is not None and content is not None:   # resumed: the last page is a digest
            repeated = digest(content) == self._last_digest and len(records) > 0
            self._last_digest = None
        else:
            repeated = content is not None and content == self._last_content and len(records) > 0
        self._last_content = content
        if repeated:
            raise PaginationError(f"page {self.pages_seen} ({response.url}) repeats page {self.pages_seen - 1}: "
                                  f"the API ignores the paging parameters")


def shorten(token: str, width: int = 20) -> str:
    """A token prefix for messages: enough to recognise a loop, short enough to keep logs readable."""
    return token if len(token) <= width else token[:width] + "…"


def digest(value: bytes | str) -> str:
    """A short digest of a page, a cursor or a URL key: what a saved state keeps for loop detection."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return hashlib.sha256(data).hexdigest()[:16]


class SeenSet:
    """Digests of the cursors or URLs a run followed, in order: all of them in memory, the latest
    `SEEN_LIMIT` in a saved state."""

    def __init__(self, digests: list[str] | None = None):
        self._digests: dict[str, None] = dict.fromkeys(digests or ())

    def __contains__(self, key: str) -> bool:
        return digest(key) in self._digests

    def add(self, key: str) -> None:
        self._digests[digest(key)] = None

    def saved(self) -> list[str]:
        return list(self._digests)[-SEEN_LIMIT:]

    @classmethod
    def restored(cls, value: Any) -> SeenSet:
        if not isinstance(value, list) or len(value) > SEEN_LIMIT:
            raise ValueError(f"expected at most {SEEN_LIMIT} seen digests")
        return cls([_digest(d, "seen") for d in value])


def _count(state: dict[str, Any], name: str, optional: bool = False) -> Any:
    value = state.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"paginator state {name}: expected a count")
    return value


def _flag(state: dict[str, Any], name: str) -> bool:
    value = state.get(name)
    if not isinstance(value, bool):
        raise ValueError(f"paginator state {name}: expected true or false")
    return value


def _digest(value: Any, name: str, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) != 16 or any(c not in "0123456789abcdef" for c in value):
        raise ValueError(f"paginator state {name}: expected 16-hex-digit digests")
    return value
