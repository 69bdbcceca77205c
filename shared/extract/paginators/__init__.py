"""Paginators, picked by the manifest's `pagination.type` from a fixed registry (after dlt's rest_client).

Each paging style is a small class with the same hooks; the extractor never branches on the style.
The registry is read-only and paginators keep their state on the instance, so nothing about one
run survives into the next.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from shared.extract.paginators.base import Paginator
from shared.extract.paginators.cursor import CursorPaginator, HeaderCursorPaginator
from shared.extract.paginators.links import Link, LinkHeaderPaginator, NextLinkPaginator, parse_link_header
from shared.extract.paginators.numbered import OffsetPaginator, PageNumberPaginator
from shared.extract.paginators.paths import MISSING, as_count, dotted_get
from shared.extract.paginators.single import SinglePage

PAGINATORS: Mapping[str, type[Paginator]] = MappingProxyType({
    cls.type_name: cls
    for cls in (SinglePage, PageNumberPaginator, OffsetPaginator, CursorPaginator, HeaderCursorPaginator,
                NextLinkPaginator, LinkHeaderPaginator)
})


def paginator_class(config: Any) -> type[Paginator]:
    """The paginator class `config.type` names."""
    name = getattr(config, "type", None)
    cls = PAGINATORS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown pagination type {name!r}: valid types are {', '.join(PAGINATORS)}")
    return cls


def create_paginator(config: Any) -> Paginator:
    """A fresh paginator for one model's run, chosen by `config.type`."""
    return paginator_class(config)(config)


def resume_paginator(config: Any, state: dict[str, Any]) -> Paginator:
    """The paginator a saved `Paginator.state()` describes (ValueError when it is not a valid one)."""
    return paginator_class(config).resume(config, state)


__all__ = [
    "MISSING", "PAGINATORS", "CursorPaginator", "HeaderCursorPaginator", "Link", "LinkHeaderPaginator",
    "NextLinkPaginator",
    "OffsetPaginator", "PageNumberPaginator", "Paginator", "SinglePage", "as_count", "create_paginator",
    "dotted_get", "paginator_class", "parse_link_header", "resume_paginator",
]
