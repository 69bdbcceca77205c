"""Paging by following a URL the API gives for the next page, in the body or in a `Link` header."""
from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from shared.config.models import LinkHeaderPagination, NextLinkPagination
from shared.errors import PaginationError
from shared.extract.paginators.base import Paginator, SeenSet
from shared.extract.paginators.paths import dotted_get
from shared.extract.types import PageRequest, PageResponse


class _LinkFollower(Paginator):
    """Follows next URLs as given; the link carries its own query, so the first page's params are dropped."""

    def __init__(self, config: NextLinkPagination | LinkHeaderPagination):
        super().__init__(config)
        self._next_url: str | None = None
        self._seen = SeenSet()  # normalised URLs already requested or queued in this run

    def _own_state(self) -> dict[str, Any]:
        return {"next_url": self._next_url, "seen": self._seen.saved()}

    def _restore(self, state: dict[str, Any]) -> None:
        url = state.get("next_url")
        if url is not None and (not isinstance(url, str) or urlsplit(url).scheme.lower() not in ("http", "https")):
            raise ValueError("paginator state next_url: expected an http(s) URL")
        self._next_url = url
        self._seen = SeenSet.restored(state.get("seen"))

    def init_request(self, request: PageRequest) -> None:
        self._seen.add(url_key(with_params(request.url, request.params)))

    def _advance(self, response: PageResponse, records: list) -> bool:
        self._seen.add(url_key(response.url))
        link = self._next_link(response)
        if link is None or link == "":
            return False
        url = urljoin(response.url, link)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise PaginationError(f"next link on page {self.pages_seen} ({response.url}) is not an http(s) URL: {url}")
        key = url_key(url)
        if key in self._seen:
            raise PaginationError(f"next link {url} repeated at page {self.pages_seen}: the API is looping")
        self._seen.add(key)
        self._next_url = url
        return True

    def _point_at_next(self, request: PageRequest) -> None:
        if self._next_url is None:   # update_request asks only while has_next, which a link sets
            raise RuntimeError(f"{self.type_name} paginator has no next link to follow (page {self.pages_seen})")
        request.url = self._next_url
        request.params = {}

    @abstractmethod
    def _next_link(self, response: PageResponse) -> str | None:
        """The next page's URL as the API wrote it (possibly relative), or None at the end."""


class NextLinkPaginator(_LinkFollower):
    type_name: ClassVar[str] = "next_link"
    config: NextLinkPagination

    def _next_link(self, response: PageResponse) -> str | None:
        link = dotted_get(response.body, self.config.next_path, None)
        if link is None or isinstance(link, str):
            return link
        raise PaginationError(f"next link at '{self.config.next_path}' on page {self.pages_seen} ({response.url}) "
                              f"is a {type(link).__name__}, expected a URL string")


class LinkHeaderPaginator(_LinkFollower):
    """GitHub-style `Link: <…?page=2>; rel="next", <…?page=9>; rel="last"`."""

    type_name: ClassVar[str] = "link_header"
    config: LinkHeaderPagination

    def _next_link(self, response: PageResponse) -> str | None:
        value = header(response.headers, "Link")
        if not value:
            return None
        return next((link.url for link in parse_link_header(value) if "next" in link.rels), None)


# ---------------------------------------------------------------- RFC 8288 Link header
@dataclass(frozen=True)
class Link:
    url: str                                   # as written, possibly relative
    rels: tuple[str, ...]                      # lower-cased relation types: `rel="next last"` gives both
    params: Mapping[str, str] = field(default_factory=dict)


def parse_link_header(value: str) -> list[Link]:
    """All links of a `Link` header value (several headers arrive joined by commas).

    A hand-written scanner rather than a split on commas: URLs may contain commas inside `<…>`
    and quoted parameters may contain commas and semicolons. Malformed pieces are skipped.
    """
    links: list[Link] = []
    i = 0
    while True:
        start = value.find("<", i)
        end = value.find(">", start + 1) if start >= 0 else -1
        if end < 0:
            return links
        i, params = _link_params(value, end + 1)
        links.append(Link(value[start + 1:end].strip(), tuple(params.get("rel", "").lower().split()), params))


def _link_params(value: str, i: int) -> tuple[int, dict[str, str]]:
    """The `; name=value` parameters after a `<url>`, up to the comma that ends the link."""
    params: dict[str, str] = {}
    n = len(value)
    while i < n:
        char = value[i]
        if char == ",":
            return i + 1, params
        if char == "<":  # a missing comma: the next link starts here
            return i, params
        if char != ";":
            i += 1  # whitespace or junk between parameters
            continue
        i = _skip_space(value, i + 1)
        start = i
        while i < n and value[i] not in "=;, \t":
            i += 1
        name = value[start:i].lower()
        i = _skip_space(value, i)
        text = ""
        if i < n and value[i] == "=":
            i, text = _param_value(value, _skip_space(value, i + 1))
        if name and name not in params:  # RFC 8288: occurrences after the first are ignored
            params[name] = text
    return i, params


def _param_value(value: str, i: int) -> tuple[int, str]:
    n = len(value)
    if i < n and value[i] == '"':
        out: list[str] = []
        i += 1
        while i < n and value[i] != '"':
            if value[i] == "\\" and i + 1 < n:
                i += 1
            out.append(value[i])
            i += 1
        return i + 1, "".join(out)
    start = i
    while i < n and value[i] not in ";, \t":
        i += 1
    return i, value[start:i]


def _skip_space(value: str, i: int) -> int:
    while i < len(value) and value[i] in " \t":
        i += 1
    return i


# ---------------------------------------------------------------- URLs
def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name whatever its case, even when `headers` is a plain dict (tests, other clients)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def with_params(url: str, params: Mapping[str, object]) -> str:
    """The URL a request with `params` actually asks for."""
    if not params:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    for key, item in params.items():
        for one in item if isinstance(item, (list, tuple)) else [item]:
            if one is not None:
                query.append((key, str(one)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def url_key(url: str) -> str:
    """A URL normalised for loop detection: scheme and host case, query encoding and order, fragment do not matter."""
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))
