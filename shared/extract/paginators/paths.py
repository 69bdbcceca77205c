"""Reading values out of JSON bodies by dotted path, shared by paginators and the record extractor."""
from __future__ import annotations

from typing import Any


class _Missing:
    """A sentinel distinct from None: a body may state `"next": null`, which is not the same as no key."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def dotted_get(body: Any, path: str, default: Any = MISSING) -> Any:
    """The value at `path`, or `default` when any step is absent.

    Keys may themselves contain dots (`@odata.nextLink`), so at each level the longest prefix of
    the remaining path that is a key wins, and shorter prefixes are tried when that leads nowhere.
    A segment under a list is an index (`items.0.id`, `data.-1.id` for the last element).
    """
    found = _walk(body, path)
    return default if found is MISSING else found


def _walk(node: Any, path: str) -> Any:
    if path == "":
        return node
    if isinstance(node, dict):
        if path in node:
            return node[path]
        cut = path.rfind(".")
        while cut > 0:
            head = path[:cut]
            if head in node:
                found = _walk(node[head], path[cut + 1:])
                if found is not MISSING:
                    return found
            cut = path.rfind(".", 0, cut)
        return MISSING
    if isinstance(node, list):
        head, _, rest = path.partition(".")
        try:
            index = int(head)
        except ValueError:
            return MISSING
        if -len(node) <= index < len(node):
            return _walk(node[index], rest)
    return MISSING


def as_count(value: Any) -> int | None:
    """A non-negative count from an int or a numeric string; None for anything else.

    APIs state totals as `"1234"` as often as `1234`; a bool, a negative or a fraction is not a
    count and is ignored rather than trusted.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isascii() and text.isdigit() else None
    return None
