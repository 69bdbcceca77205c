"""The walk of an incremental API model: which windows to request, what each request carries, which
records to keep, and the cursor that may be committed once a page (and every page before it) is loaded.

A cursor moves only as far as the rows loaded prove: the highest cursor seen once a whole window is
loaded (or the window's end, when there is one), and, inside a window, the highest seen so far only
when the API sorts by the cursor ascending. So a run killed anywhere restarts at or before the first
record it did not load.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.config.incremental import ApiIncremental, parse_duration
from shared.extract.cursor import Cursor, CursorError, Kind, highest, read_cursor
from shared.extract.paginators import MISSING, dotted_get
from shared.extract.types import PageRequest


def set_request_value(request: PageRequest, location: str, name: str, value: str) -> None:
    """Put one value where the API reads it: a query parameter, `{name}` in the URL's path, or a
    dotted path of the JSON body (under a graphql model's variables)."""
    if location in ("query", "body"):
        request.paging(location)[name] = value
    elif location == "path":
        request.url = request.url.replace("{" + name + "}", value)
    else:
        raise ValueError(f"no request location '{location}'")


@dataclass(frozen=True)
class Window:
    """One resumable unit of the walk: records from `start` (sent as `param`) to `end` (`end_param`)."""

    index: int
    start: Cursor | None
    end: Cursor | None
    last: bool


class ApiWalk:
    """One run's walk of an incremental model, from the committed cursor (None: the first run)."""

    def __init__(self, spec: ApiIncremental, committed: Cursor | None, qualified: str, now: datetime | None = None):
        self.spec, self.qualified = spec, qualified
        initial = read_cursor(spec.initial_value, None, f"{qualified}: incremental.initial_value")
        self.kind: Kind | None = committed.kind if committed is not None else initial.kind if initial else None
        self.committed = committed
        self.start = committed.minus(spec.lag) if committed is not None else initial
        self.high = committed             # the highest cursor of the rows loaded (or committed)
        self.dropped = 0                   # records at or below the cursor (on: client)
        self.stopped = False               # a page sorted past the cursor ended the window early
        self.page_high: Cursor | None = None   # the highest cursor of the last page taken
        self._from_initial = committed is None
        self.windows = self._windows(now or datetime.now(UTC))

    def _windows(self, now: datetime) -> list[Window]:
        spec = self.spec
        if spec.end_param is None:
            return [Window(0, self.start, None, True)]
        end = read_cursor(spec.end_value, self.kind, f"{self.qualified}: incremental.end_value") \
            if spec.end_value is not None else read_cursor(now, self.kind, f"{self.qualified}: now")
        if end is None:
            raise CursorError(f"{self.qualified}: incremental.end_value is empty")
        if spec.window is None or self.start is None:
            return [Window(0, self.start, end, True)]
        span = parse_duration(spec.window)
        windows: list[Window] = []
        start = self.start
        while True:
            stop = start.plus(span)
            if end <= stop:
                windows.append(Window(len(windows), start, end, True))
                return windows
            windows.append(Window(len(windows), start, stop, False))
            start = stop

    def request(self, first: PageRequest, window: Window) -> PageRequest:
        """The window's first request: the manifest's, with the cursor (and the window's end) set."""
        request = first.copy()
        spec = self.spec
        if spec.on == "server" and spec.param is not None and window.start is not None:
            set_request_value(request, spec.location, spec.param, window.start.text())
        if spec.end_param is not None and window.end is not None:   # beside the cursor (in the query for a path)
            set_request_value(request, "body" if spec.location == "body" else "query", spec.end_param,
                              window.end.text())
        return request

    def take(self, records: list[Any], first_position: int) -> list[Any]:
        """The page's records worth loading (on: client drops those at or below the cursor); follows
        the highest cursor; sets `stopped` when an API sorted descending has gone past the cursor."""
        spec = self.spec
        cursors = [self._cursor(record, first_position + i) for i, record in enumerate(records)]
        kept = records
        if spec.on == "client" and self.start is not None:
            kept, kept_cursors = [], []
            for record, cursor in zip(records, cursors, strict=True):
                if cursor is None or self._newer(cursor):
                    kept.append(record)
                    kept_cursors.append(cursor)
                elif spec.sorted == "desc":
                    self.stopped = True
            self.dropped += len(records) - len(kept)
            cursors = kept_cursors
        page_high = self.page_high = highest(cursors)
        if page_high is not None and (self.high is None or self.high < page_high):
            self.high = page_high
        return kept

    def _newer(self, cursor: Cursor) -> bool:
        start = self.start
        if start is None:
            return True
        return start <= cursor if self._from_initial else start < cursor

    def _cursor(self, record: Any, position: int) -> Cursor | None:
        value = dotted_get(record, self.spec.cursor_path, MISSING) if isinstance(record, dict) else MISSING
        if value is MISSING:
            return None
        cursor = read_cursor(value, self.kind, f"{self.qualified}: the cursor of record #{position}")
        if cursor is not None and self.kind is None:
            self.kind = cursor.kind
        return cursor

    def checkpoint(self, window: Window, window_done: bool) -> Cursor | None:
        """The cursor to commit with a page once it and every page before it are loaded; None: keep
        the committed one (inside a window the API does not sort ascending)."""
        if window_done:
            if window.end is not None and (self.high is None or self.high < window.end):
                return window.end
            return self.high
        if self.spec.sorted == "asc":
            return self.high
        return None
