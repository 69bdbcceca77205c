"""Paging by a token the API returns (in the body, or in a header) and expects back as a parameter
or in the request body.

The token may be taken from the last record (`cursor_path: data.-1.id`, Stripe's `starting_after`),
and, sent in the body, may be a list: Elasticsearch's `search_after` is the last hit's `sort` array.
"""
from __future__ import annotations

import json
from abc import abstractmethod
from typing import Any, ClassVar

from shared.config.models import CursorPagination, HeaderCursorPagination
from shared.errors import PaginationError
from shared.extract.paginators.base import Paginator, SeenSet, shorten
from shared.extract.paginators.links import header
from shared.extract.paginators.paths import dotted_get
from shared.extract.request_body import body_value
from shared.extract.types import PageRequest, PageResponse

MAX_LIST = 64   # items of a list cursor (a sort key has a few); a saved state holds no more


def _scalar(value: Any) -> bool:
    return value is None or (isinstance(value, (str, int, float)) and not isinstance(value, bool))


class _TokenPaginator(Paginator):
    """What every token style shares: loop detection, list tokens, the API's "more" flag."""

    config: CursorPagination | HeaderCursorPagination

    def __init__(self, config: CursorPagination | HeaderCursorPagination):
        super().__init__(config)
        self._cursor: Any = None
        self._seen = SeenSet()  # an API that hands back an old cursor would otherwise loop until max_pages

    def _own_state(self) -> dict[str, Any]:
        return {"cursor": self._cursor, "seen": self._seen.saved()}

    def _restore(self, state: dict[str, Any]) -> None:
        cursor = state.get("cursor")
        if isinstance(cursor, list) and self.config.location == "body":
            if len(cursor) > MAX_LIST or not all(_scalar(item) for item in cursor):
                raise ValueError("paginator state cursor: expected a list of strings and numbers")
        elif cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, (str, int, float))):
            raise ValueError("paginator state cursor: expected a string or a number")
        self._cursor = cursor
        self._seen = SeenSet.restored(state.get("seen"))

    def init_request(self, request: PageRequest) -> None:
        """A starting cursor given in the model's params (or body) counts as seen: the API must not
        send us back to it."""
        if self.config.location == "body":
            start = body_value(request.body, self.config.param)
        else:
            start = request.params.get(self.config.param)
        if start not in (None, "", []):
            self._seen.add(_key(start))

    def _advance(self, response: PageResponse, records: list) -> bool:
        if not records and self.config.stop_after_empty_page:
            return False
        cursor = self._found_cursor(response)
        if cursor is None or cursor == "" or cursor == []:
            return False
        if isinstance(cursor, list) and self.config.location == "body":
            if len(cursor) > MAX_LIST or not all(_scalar(item) for item in cursor):
                raise PaginationError(f"cursor at {self._where()} on page {self.pages_seen} ({response.url}) is a "
                                      f"list of other than strings and numbers (or more than {MAX_LIST} of them)")
        elif isinstance(cursor, (dict, list, bool)):
            hint = ": a list cursor can only be sent in the body (in: body)" if isinstance(cursor, list) else ""
            raise PaginationError(f"cursor at {self._where()} on page {self.pages_seen} ({response.url}) "
                                  f"is a {type(cursor).__name__}, expected a string or a number{hint}")
        key = _key(cursor)
        if key in self._seen:
            raise PaginationError(f"cursor '{shorten(key)}' repeated at page {self.pages_seen} ({response.url}): "
                                  f"the API is looping")
        self._seen.add(key)
        self._cursor = cursor
        return True

    def _follow_stated(self, stated: bool, more: bool, records: list, response: PageResponse) -> bool:
        """A cursor API saying more pages follow must say where they start (unless an empty page
        ends the model by the manifest's `stop_after_empty_page`)."""
        if not records and self.config.stop_after_empty_page:
            return False
        if stated and not more:
            raise PaginationError(f"page {self.pages_seen} ({response.url}) says more pages follow "
                                  f"(has_more_path '{self.config.has_more_path}') but has no cursor at "
                                  f"{self._where()}")
        return stated and more

    def _point_at_next(self, request: PageRequest) -> None:
        request.paging(self.config.location)[self.config.param] = self._cursor

    @abstractmethod
    def _found_cursor(self, response: PageResponse) -> Any:
        """The next cursor as the response gives it, or None at the end."""

    @abstractmethod
    def _where(self) -> str:
        """Where the cursor is read, for messages."""


class CursorPaginator(_TokenPaginator):
    """The next cursor in the body, at `cursor_path`."""

    type_name: ClassVar[str] = "cursor"
    config: CursorPagination

    def _found_cursor(self, response: PageResponse) -> Any:
        return dotted_get(response.body, self.config.cursor_path, None)

    def _where(self) -> str:
        return f"'{self.config.cursor_path}'"


class HeaderCursorPaginator(_TokenPaginator):
    """The next cursor in a response header (`X-Next-Cursor`)."""

    type_name: ClassVar[str] = "header_cursor"
    config: HeaderCursorPagination

    def _found_cursor(self, response: PageResponse) -> Any:
        value = header(response.headers, self.config.header)
        return value.strip() if isinstance(value, str) else None

    def _where(self) -> str:
        return f"header {self.config.header}"


def _key(cursor: Any) -> str:
    """A cursor as loop detection keys it: a list by its JSON text."""
    return json.dumps(cursor, separators=(",", ":")) if isinstance(cursor, list) else str(cursor)
