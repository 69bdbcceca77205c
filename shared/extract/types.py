"""The small value types that pass between paginators, the HTTP client and the extractor."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class PageRequest:
    """What to ask for next. `url` is absolute; `params` are merged into its query string."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def copy(self) -> "PageRequest":
        return PageRequest(self.url, dict(self.params), dict(self.headers))


@dataclass(frozen=True)
class PageResponse:
    """A decoded HTTP response: enough for a paginator to decide what comes next, nothing more."""

    url: str                      # the URL actually requested, query string included
    status: int
    headers: Mapping[str, str]    # case-insensitive (requests.structures.CaseInsensitiveDict)
    body: Any                     # parsed JSON
    content: bytes = b""          # raw body bytes, used to spot an API that serves the same page again
    elapsed: float = 0.0          # seconds, retries and throttling waits included


@dataclass
class Page:
    """One page of standard dict records, typed and PII-stripped, ready to write or load."""

    source: str
    model: str
    index: int                    # 0-based position of the page in this run
    records: list[dict[str, Any]]
    url: str | None = None        # None for SQL chunks
