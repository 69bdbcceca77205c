"""The small value types that pass between paginators, the HTTP client and the extractor."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

_UNDECODED = object()


@dataclass
class RequestBody:
    """A body as the manifest gives it (`json`, `form`, `graphql`) plus the paging values written into
    it, kept apart: the manifest part may hold secrets and is rebuilt from the manifest, never carried."""

    kind: Literal["json", "form"]
    base: Mapping[str, Any] = field(default_factory=dict)
    at: str = ""                  # dotted prefix of the paging values: "variables" for a GraphQL query
    values: dict[str, Any] = field(default_factory=dict)   # dotted path (under `at`) -> paging value

    def copy(self) -> RequestBody:
        return RequestBody(self.kind, self.base, self.at, dict(self.values))


@dataclass
class PageRequest:
    """What to ask for next. `url` is absolute; `params` are merged into its query string. A POST or
    PUT that is not `idempotent` is never sent twice by the client's retries."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    body: RequestBody | None = None
    idempotent: bool = True

    def copy(self) -> PageRequest:
        return PageRequest(self.url, dict(self.params), dict(self.headers), self.method,
                           self.body.copy() if self.body is not None else None, self.idempotent)

    def paging(self, location: str) -> dict[str, Any]:
        """Where a paginator writes its values: the query parameters, or the body's paging values (a
        body is made, empty JSON, for a POST without one)."""
        if location != "body":
            return self.params
        if self.body is None:
            self.body = RequestBody("json")
        return self.body.values


class PageResponse:
    """A decoded HTTP response: enough for a paginator to decide what comes next, nothing more.

    The body may be given decoded (`body=`) or left to a `decode` function run on first access:
    the HTTP client passes one, so JSON is parsed by the thread that consumes the page rather
    than by the fetching threads, which then do nothing but wait on sockets and never compete
    with the consumer for the interpreter.
    """

    __slots__ = ("url", "status", "headers", "content", "elapsed", "empty", "_body", "_decode")

    def __init__(self, url: str, status: int, headers: Mapping[str, str], body: Any = _UNDECODED,
                 content: bytes = b"", elapsed: float = 0.0, decode: Callable[[bytes], Any] | None = None,
                 empty: bool = False):
        self.url = url                # the URL actually requested, query string included
        self.status = status
        self.headers = headers        # case-insensitive (requests.structures.CaseInsensitiveDict)
        self.content = content        # raw body bytes, used to spot an API that serves the same page again
        self.elapsed = elapsed        # seconds, retries and throttling waits included
        self.empty = empty            # a response rule said: no records here, and no page after it
        self._body = body
        self._decode = decode

    @property
    def body(self) -> Any:
        """The parsed JSON body; decoding errors surface here, where the page is consumed."""
        if self._body is _UNDECODED:
            if self._decode is None:
                raise ValueError("PageResponse has neither a body nor a decoder")
            self._body = self._decode(self.content)
        return self._body

    def __repr__(self) -> str:
        return f"PageResponse({self.url!r}, {self.status}, {len(self.content)} bytes)"


@dataclass
class Page:
    """One page of standard dict records, typed and PII-stripped, ready to write or load."""

    source: str
    model: str
    index: int                    # 0-based position of the page in this run
    records: list[dict[str, Any]]
    url: str | None = None        # None for SQL chunks
    resume_after: tuple | None = None  # SQL keyset chunks: the key this chunk starts after, to re-read it
    checkpoint: Any = None        # incremental: the cursor to commit once this page and those before it are loaded


class Shaper(Protocol):
    """Raw record -> the record as stored: typed columns (RecordShaper), or whole documents for
    `store: mongo` (DocumentShaper)."""

    def shape(self, raw: Any, position: int) -> dict[str, Any]: ...
