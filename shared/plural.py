"""Small wording helpers for summaries people read."""
from __future__ import annotations


def plural(count: int, one: str, many: str | None = None) -> str:
    """`1 page`, `2 pages`, `3 retries`."""
    return f"{count} {one if count == 1 else (many or one + 's')}"
