"""Paging by an opaque token the API returns in the body and expects back as a parameter."""
from __future__ import annotations

from typing import Any, ClassVar

from shared.config.models import CursorPagination
from shared.errors import PaginationError
from shared.extract.paginators.base import Paginator, SeenSet, shorten
from shared.extract.paginators.paths import dotted_get
from shared.extract.types import PageRequest, PageResponse


class CursorPaginator(Paginator):
    type_name: ClassVar[str] = "cursor"
    config: CursorPagination

    def __init__(self, config: CursorPagination):
        super().__init__(config)
        self._cursor: Any = None
        self._seen = SeenSet()  # an API that hands back an old cursor would otherwise loop until max_pages

    def _own_state(self) -> dict[str, Any]:
        return {"cursor": self._cursor, "seen": self._seen.saved()}

    def _restore(self, state: dict[str, Any]) -> None:
        cursor = state.get("cursor")
        if cursor is not None and (isinstance(cursor, bool) or not isinstance(cursor, (str, int, float))):
            raise ValueError("paginator state cursor: expected a string or a number")
        self._cursor = cursor
        self._seen = SeenSet.restored(state.get("seen"))

    def init_request(self, request: PageRequest) -> None:
        """A starting cursor given in the model's params counts as seen: the API must not send us back to it."""
        start = request.params.get(self.config.param)
        if start not in (None, ""):
            self._seen.add(str(start))

    def _advance(self, response: PageResponse, records: list) -> bool:
        cursor = dotted_get(response.body, self.config.cursor_path, None)
        if cursor is None or cursor == "":
            return False
        if isinstance(cursor, (dict, list, bool)):
            raise PaginationError(f"cursor at '{self.config.cursor_path}' on page {self.pages_seen} ({response.url}) "
                                  f"is a {type(cursor).__name__}, expected a string or a number")
        key = str(cursor)
        if key in self._seen:
            raise PaginationError(f"cursor '{shorten(key)}' repeated at page {self.pages_seen} ({response.url}): "
                                  f"the API is looping")
        self._seen.add(key)
        self._cursor = cursor
        return True

    def _point_at_next(self, request: PageRequest) -> None:
        request.params[self.config.param] = self._cursor
