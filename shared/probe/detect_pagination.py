"""Guess how an API pages, from one response and, where the body gives no hint, a few test requests.

Guesses are produced lazily and in order of confidence, as `Candidate`s carrying the very pydantic
config the manifest will hold: the caller verifies each with the real paginator and keeps the first
that walks cleanly, so a test request is only sent when every cheaper guess has failed. The order
across this module and `detect_signals.py` is set in `guesses.py`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shared.config.models import (
    CursorPagination,
    LinkHeaderPagination,
    NextLinkPagination,
    OffsetPagination,
    PageNumberPagination,
    Pagination,
)
from shared.extract.paginators import as_count, dotted_get, parse_link_header
from shared.extract.paginators.links import header

NEXT_LINK_PATHS = ("@odata.nextLink", "nextLink", "next", "links.next", "next_page_url", "paging.next",
                   "_links.next.href", "links.next.href", "next_url", "nextUrl", "nextPageUrl", "meta.next",
                   "pagination.next", "meta.links.next")
CURSOR_PATHS = ("next_cursor", "nextCursor", "cursor", "next_page_token", "nextPageToken", "meta.next_cursor",
                "pagination.next_cursor", "response_metadata.next_cursor", "paging.cursors.after",
                "meta.cursor", "continuation", "continuationToken", "next")
CURSOR_PARAMS = ("cursor", "after", "page_token", "pageToken", "next_cursor", "continuation", "starting_after",
                 "start_cursor", "continuationToken")
CURSOR_HINTS = ("next", "cursor", "token", "continuation", "after")
TOTAL_PAGES_PATHS = ("meta.total_pages", "total_pages", "totalPages", "pages", "meta.totalPages", "meta.pages",
                     "pagination.total_pages", "pagination.totalPages", "page_count", "pageCount",
                     "meta.page_count", "meta.last_page", "last_page")
TOTAL_PATHS = ("total", "count", "total_count", "totalCount", "@odata.count", "meta.total", "meta.total_count",
               "meta.totalCount", "meta.count", "pagination.total", "total_results", "totalResults")
PAGE_PARAM = "page"
SIZE_PARAMS = ("per_page", "page_size", "pageSize", "limit", "size")
OFFSET_PARAMS = ("offset", "skip", "start", "startAt")
LIMIT_PARAMS = ("limit", "top", "count", "maxResults")
MAX_DEPTH = 3

FetchRecords = Callable[[dict[str, Any]], "list | None"]
"""The model URL's records for a full set of query params; None when the request fails."""


@dataclass(frozen=True)
class FirstPage:
    body: Any
    headers: Mapping[str, str]
    records: list
    records_path: str | None
    params: dict[str, Any]        # the query (or the JSON body's fields) the first page was fetched with
    location: str = "query"       # where paging values go: "query", or "body" for a JSON body that pages


@dataclass(frozen=True)
class Candidate:
    config: Pagination            # one of the manifest's pagination models
    how: str                      # for the report: what gave it away
    owned_params: frozenset[str] = frozenset()   # URL params the paginator sets itself from now on

    @property
    def type(self) -> str:
        return self.config.type


Finder = Callable[[FirstPage, FetchRecords], Iterator[Candidate]]


# ---------------------------------------------------------------- hints in the response
def _link_header(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    value = header(first.headers, "Link")
    if value and any("next" in link.rels for link in parse_link_header(value)):
        yield Candidate(LinkHeaderPagination(type="link_header"), 'a Link header with rel="next"')


def _next_links(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    for path in _hinted_paths(first, NEXT_LINK_PATHS, ("next",), is_link):
        yield Candidate(NextLinkPagination(type="next_link", next_path=path), f"a next-page URL at '{path}'")


def _cursors(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    for path in _hinted_paths(first, CURSOR_PATHS, CURSOR_HINTS, is_token)[:3]:
        token = dotted_get(first.body, path)
        for param in _cursor_params(path):
            if new_records(fetch({**first.params, param: token}), first.records):
                yield Candidate(CursorPagination(type="cursor", cursor_path=path, param=param),
                                f"a cursor at '{path}', accepted back as {sent_as(first, param)}", frozenset({param}))
                break


def _stated_pages(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    pages_path = first_path(first.body, TOTAL_PAGES_PATHS, lambda v: as_count(v) is not None)
    if pages_path is None and PAGE_PARAM not in first.params:
        return
    start = 0 if str(first.params.get(PAGE_PARAM, "")).strip() == "0" else 1
    how = f"a page count at '{pages_path}'" if pages_path else f"a '{PAGE_PARAM}' parameter in the URL"
    yield _page_number(first, start, pages_path, how)


def _url_offset(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    offset_param = next((p for p in OFFSET_PARAMS if p in first.params), None)
    limit_param = next((p for p in LIMIT_PARAMS if as_count(first.params.get(p)) is not None), None)
    if offset_param and limit_param:
        start = as_count(first.params[offset_param]) or 0
        yield _offset(first, offset_param, limit_param, start, f"'{offset_param}' and '{limit_param}' in the URL")


# ---------------------------------------------------------------- test requests
def _probed_pages(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    if PAGE_PARAM in first.params:
        return
    if not new_records(fetch({**first.params, PAGE_PARAM: 2}), first.records):
        return
    start = 1 if same_records(fetch({**first.params, PAGE_PARAM: 1}), first.records) else \
        0 if same_records(fetch({**first.params, PAGE_PARAM: 0}), first.records) else 1
    yield _page_number(first, start, None, f"?{PAGE_PARAM}={start + 1} returned new records")


def _probed_offset(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    limit_param = next((p for p in LIMIT_PARAMS if as_count(first.params.get(p)) is not None), None)
    if limit_param is None and total_path(first) is None:
        return
    limit_param = limit_param or "limit"
    size = len(first.records)
    for offset_param in (p for p in OFFSET_PARAMS if p not in first.params):
        if new_records(fetch({**first.params, offset_param: size, limit_param: size}), first.records):
            yield _offset(first, offset_param, limit_param, 0, f"?{offset_param}={size}&{limit_param}={size} "
                                                               f"returned the next records")
            return


# ---------------------------------------------------------------- building configs
def _page_number(first: FirstPage, start: int, pages_path: str | None, how: str) -> Candidate:
    size_param = next((p for p in SIZE_PARAMS if as_count(first.params.get(p))), None)
    asked = as_count(first.params[size_param]) if size_param else None
    size = _page_size(first, asked) if asked else None
    config = PageNumberPagination(type="page_number", param=PAGE_PARAM, start=start, size_param=size_param,
                                  size=size, total_pages_path=pages_path, total_path=total_path(first))
    return Candidate(config, how, frozenset(p for p in (PAGE_PARAM, size_param) if p))


def _offset(first: FirstPage, offset_param: str, limit_param: str, start: int, how: str) -> Candidate:
    limit = _page_size(first, as_count(first.params.get(limit_param)) or len(first.records) or 100)
    config = OffsetPagination(type="offset", offset_param=offset_param, limit_param=limit_param, limit=limit,
                              start=start, total_path=total_path(first))
    return Candidate(config, how, frozenset({offset_param, limit_param}))


def _page_size(first: FirstPage, asked: int) -> int:
    """An API that caps the page size serves fewer records than asked on every page: a paginator told
    the asked size would take page 1 for a short, last page and stop."""
    total = as_count(dotted_get(first.body, total_path(first) or "", None))
    got = len(first.records)
    if 0 < got < asked and (total is None or total > got):
        return got
    return asked


def total_path(first: FirstPage) -> str | None:
    """A stated record total; a bare `count` equal to the page's length is the page's own count."""
    def plausible(path: str, value: Any) -> bool:
        count = as_count(value)
        if count is None:
            return False
        return count > len(first.records) if path in ("count", "meta.count") else count >= len(first.records)
    return next((p for p in TOTAL_PATHS if plausible(p, dotted_get(first.body, p, None))), None)


def first_path(body: Any, paths: tuple[str, ...], accept: Callable[[Any], bool]) -> str | None:
    return next((p for p in paths if accept(dotted_get(body, p, None))), None)


def _hinted_paths(first: FirstPage, known: tuple[str, ...], hints: tuple[str, ...],
                  accept: Callable[[Any], bool]) -> list[str]:
    """Known paths holding an acceptable value, then any other leaf whose key names a hint."""
    found = [p for p in known if accept(dotted_get(first.body, p, None))]
    for path, value in leaves(first.body, first.records_path):
        joined = ".".join(path)
        if joined not in found and accept(value) and any(h in part.lower() for part in path for h in hints):
            found.append(joined)
    return found


def leaves(body: Any, skip: str | None, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Scalar values of the envelope (not of the records), with their key paths, up to MAX_DEPTH."""
    if not isinstance(body, dict) or len(path) >= MAX_DEPTH:
        return
    for key, value in body.items():
        here = path + (str(key),)
        if ".".join(here) == skip:
            continue
        if isinstance(value, dict):
            yield from leaves(value, skip, here)
        elif not isinstance(value, list):
            yield here, value


def _cursor_params(path: str) -> list[str]:
    key = path.rsplit(".", 1)[-1]
    return list(dict.fromkeys((*CURSOR_PARAMS, key)))


# Finders by what they cost: reading the first response, reading its URL, sending test requests.
RESPONSE_HINTS: tuple[Finder, ...] = (_link_header, _next_links, _cursors)
URL_HINTS: tuple[Finder, ...] = (_stated_pages, _url_offset)
TEST_REQUESTS: tuple[Finder, ...] = (_probed_pages, _probed_offset)


# ---------------------------------------------------------------- values
def sent_as(first: FirstPage, param: str) -> str:
    """How a paging value went back, for the report: `?after=` or `'after' in the body`."""
    return f"'{param}' in the body" if first.location == "body" else f"?{param}="


def is_link(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://", "/", "?"))


def is_token(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip() != "" and not is_link(value) and " " not in value.strip()


def record_digest(record: Any) -> str:
    text = json.dumps(record, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def new_records(page: list | None, first: list) -> bool:
    """A page of records mostly unlike the first page's: the API honoured the paging parameter."""
    if not page or not isinstance(page, list):
        return False
    seen = {record_digest(r) for r in first}
    fresh = sum(record_digest(r) not in seen for r in page)
    return fresh * 2 >= len(page)


def same_records(page: list | None, first: list) -> bool:
    return isinstance(page, list) and [record_digest(r) for r in page] == [record_digest(r) for r in first]
