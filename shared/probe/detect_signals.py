"""Paging signals that are not a next link or a body cursor: a cursor in a response header, a cursor
that is the last record's own id, and the API's "more pages follow" flag.

A header or a last-record value is only proposed once the API has accepted it back: a test request
with it must return new records. The flag needs no request; the walk with the real paginator proves it.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from shared.config.models import CursorPagination, HeaderCursorPagination
from shared.extract.paginators import dotted_get
from shared.probe.detect_pagination import CURSOR_PARAMS, Candidate, FetchRecords, FirstPage, is_token, new_records

# Header names hint at a cursor by one of these words; these others are known to carry something else.
HEADER_HINTS = ("cursor", "continuation", "next", "token", "after", "marker")
HEADER_NOT_CURSOR = re.compile(r"ratelimit|rate-limit|request-?id|correlation|trace|total|count|csrf|xsrf|etag|"
                               r"^(set-cookie|link|location|authorization)$", re.IGNORECASE)
HEADERS_TRIED = 3
# Query (or body) names under which APIs take a record's id back to continue after it.
AFTER_PARAMS = ("starting_after", "after", "search_after", "after_id", "since_id", "start_after", "startAfter",
                "from_id", "last_id", "cursor")
LIST_AFTER_PARAMS = ("search_after", "searchAfter", "after")
FIELDS_TRIED = 2
# Known "more pages follow" flags; other envelope keys qualify when they read like one of these.
MORE_PATHS = ("has_more", "hasMore", "has_next", "hasNext", "has_next_page", "hasNextPage", "pageInfo.hasNextPage",
              "meta.has_more", "meta.hasMore", "pagination.has_more", "pagination.hasMore", "paging.has_more",
              "response_metadata.has_more", "more", "moreResults", "has_more_items")
MORE_KEYS = {"hasmore", "hasnext", "hasnextpage", "more", "moreitems", "moreresults", "hasmoreitems", "hasmoreresults",
             "morepages", "hasmorepages"}
DEPTH = 4


def header_cursors(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    """A response header whose value, sent back, returns the next records (`X-Next-Cursor`)."""
    tried = 0
    for name, value in first.headers.items():
        if tried >= HEADERS_TRIED:
            return
        lowered = name.lower()
        if HEADER_NOT_CURSOR.search(lowered) or not any(h in lowered for h in HEADER_HINTS) or not is_token(value):
            continue
        tried += 1
        for param in header_params(name):
            if new_records(fetch({**first.params, param: value}), first.records):
                yield Candidate(HeaderCursorPagination(type="header_cursor", header=name, param=param),
                                f"a cursor in the {name} header, accepted back as {_sent(first, param)}",
                                frozenset({param}))
                break


def header_params(name: str) -> list[str]:
    """The usual cursor names, then names made from the header's: `X-Next-Page-Token` -> page_token."""
    words = [w for w in re.split(r"[-_\s]+", name.lower()) if w]
    while words and words[0] in ("x", "ms", "next"):
        words = words[1:]
    derived = ["_".join(words), words[0] + "".join(w.title() for w in words[1:])] if words else []
    return list(dict.fromkeys((*CURSOR_PARAMS, *derived)))


def last_record_cursors(first: FirstPage, fetch: FetchRecords) -> Iterator[Candidate]:
    """The last record's id (or, in a body, its sort values) accepted back as `starting_after=`."""
    last = first.records[-1]
    prefix = f"{first.records_path}." if first.records_path else ""
    for key, params in _after_fields(first)[:FIELDS_TRIED]:
        for param in params:
            if new_records(fetch({**first.params, param: last[key]}), first.records):
                yield Candidate(CursorPagination(type="cursor", cursor_path=f"{prefix}-1.{key}", param=param),
                                f"the last record's '{key}', accepted back as {_sent(first, param)}",
                                frozenset({param}))
                return


def _after_fields(first: FirstPage) -> list[tuple[str, tuple[str, ...]]]:
    """Fields of the last record that can continue a list: unique ids, and (in a body) sort values."""
    last = first.records[-1]
    found: list[tuple[str, tuple[str, ...]]] = []
    for key, value in last.items():
        if isinstance(value, list) and first.location == "body" and value and key.lower() in ("sort", "sort_values"):
            if all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
                found.append((key, LIST_AFTER_PARAMS))
        elif is_token(value) and _id_like(key) and _unique(first.records, key):
            found.append((key, AFTER_PARAMS))
    return sorted(found, key=lambda item: item[0] != "id")


def _id_like(key: str) -> bool:
    return key.lower() in ("id", "_id", "uuid", "key") or key.endswith(("_id", "Id", "ID"))


def _unique(records: list, key: str) -> bool:
    values = [str(r.get(key)) for r in records if isinstance(r, dict)]
    return len(values) == len(records) and len(set(values)) == len(values)


def more_flag(first: FirstPage) -> str | None:
    """Where the page says whether more pages follow: a true/false at a known path, or at a key
    reading like one beside the records or in the envelope."""
    for path in MORE_PATHS:
        if isinstance(dotted_get(first.body, path, None), bool):
            return path
    for keys, value in _flags(first.body, ()):
        if isinstance(value, bool) and keys[-1].replace("_", "").lower() in MORE_KEYS:
            return ".".join(keys)
    return None


def _flags(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if not isinstance(node, dict) or len(path) >= DEPTH:
        return
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _flags(value, (*path, str(key)))
        elif isinstance(value, bool):
            yield (*path, str(key)), value


def _sent(first: FirstPage, param: str) -> str:
    return f"'{param}' in the body" if first.location == "body" else f"?{param}="
