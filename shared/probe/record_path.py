"""Where the records are in a response body.

APIs wrap their lists in envelopes (`data`, `items`, `value`, `result.items`); the probe has only
one page to go on, so it prefers the conventional names and, among equals, the list that looks
most like records (objects, and more of them).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

COMMON_NAMES = ("data", "items", "results", "value", "records", "entries", "rows")
MAX_DEPTH = 3


@dataclass(frozen=True)
class RecordList:
    path: str | None          # None when the body itself is the list
    records: list


def find_records(body: Any) -> RecordList | None:
    """The best list in the body, or None when it holds no list at all."""
    if isinstance(body, list):
        return RecordList(None, body)
    found = list(_lists(body, (), 1))
    if not found:
        return None
    path, records = max(found, key=lambda item: _score(item[0], item[1]))
    return RecordList(".".join(path), records)


def _lists(node: Any, path: tuple[str, ...], depth: int) -> Iterator[tuple[tuple[str, ...], list]]:
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return
    for key, value in node.items():
        if isinstance(value, list):
            yield path + (str(key),), value
        elif isinstance(value, dict):
            yield from _lists(value, path + (str(key),), depth + 1)


def _score(path: tuple[str, ...], items: list) -> tuple:
    """Objects beat scalars, a common name beats an odd one, more items beat fewer, shallow beats deep."""
    objects = bool(items) and all(isinstance(item, dict) for item in items)
    common = path[-1].lower() in COMMON_NAMES
    return objects, common, len(items), -len(path)
