"""Cursor values of incremental models: instants or numbers, compared as such, never as text.

A datetime cursor is compared as an instant (a value without an offset is taken as UTC), so
`2024-01-01T01:00:00+01:00` equals `2024-01-01T00:00:00Z`; a numeric one as a number, so `10` is
above `9`. Errors say where a cursor was (model, record position), never its value.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from shared.config.incremental import parse_duration
from shared.errors import ExtractError

Kind = Literal["datetime", "number"]
KINDS: tuple[Kind, ...] = ("datetime", "number")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


class CursorError(ExtractError):
    """A cursor value that cannot be read or compared: names the model and where, never the value."""


@dataclass(frozen=True, order=False)
class Cursor:
    kind: Kind
    value: datetime | Decimal    # aware, in UTC; or a Decimal

    def text(self) -> str:
        """How the cursor is stored and sent: ISO 8601 in UTC with `Z`, or the plain number."""
        if isinstance(self.value, datetime):
            spec = "seconds" if self.value.microsecond == 0 else "microseconds"
            return self.value.isoformat(timespec=spec).replace("+00:00", "Z")
        number = self.value
        if number == number.to_integral_value():
            return str(int(number))
        return format(number.normalize(), "f")

    def minus(self, lag: str | int | float | None) -> Cursor:
        """The cursor less a lag (a duration for datetimes, a number for numbers)."""
        if lag is None:
            return self
        if isinstance(self.value, datetime):
            if not isinstance(lag, str):
                raise CursorError("lag is a number but the cursor is a datetime: give an ISO 8601 duration (PT1H)")
            return Cursor("datetime", self.value - parse_duration(lag))
        if isinstance(lag, str):
            raise CursorError("lag is a duration but the cursor is a number: give a number")
        return Cursor("number", self.value - Decimal(str(lag)))

    def plus(self, span: timedelta) -> Cursor:
        if not isinstance(self.value, datetime):
            raise CursorError("window needs a datetime cursor")
        return Cursor("datetime", self.value + span)

    def __lt__(self, other: Cursor) -> bool:
        mine, theirs = self.value, other.value
        if isinstance(mine, datetime) and isinstance(theirs, datetime):
            return mine < theirs
        if isinstance(mine, Decimal) and isinstance(theirs, Decimal):
            return mine < theirs
        raise CursorError(f"a {self.kind} cursor cannot be compared with a {other.kind} one")

    def __le__(self, other: Cursor) -> bool:
        return self == other or self < other


def read_cursor(value: Any, kind: Kind | None = None, where: str = "the cursor") -> Cursor | None:
    """The cursor a value holds (None for a missing value). `kind` None: guessed from the value, a
    numeric string reads as a number. CursorError, naming `where`, for a value of the wrong kind."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CursorError(f"{where} is a boolean, not a datetime or a number")
    if isinstance(value, datetime):
        return _expect(Cursor("datetime", _utc(value)), kind, where)
    if isinstance(value, date):
        return _expect(Cursor("datetime", datetime(value.year, value.month, value.day, tzinfo=UTC)), kind, where)
    if isinstance(value, (int, float, Decimal)):
        return _expect(Cursor("number", Decimal(str(value))), kind, where)
    if isinstance(value, str):
        text = value.strip()
        if kind == "number" or (kind is None and _NUMBER.match(text)):
            try:
                return Cursor("number", Decimal(text))
            except InvalidOperation:
                raise CursorError(f"{where} is not a number") from None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise CursorError(f"{where} is not an ISO 8601 datetime (such as 2024-01-01T00:00:00Z) "
                              "nor a number") from None
        return Cursor("datetime", _utc(parsed))
    raise CursorError(f"{where} is a {type(value).__name__}, not a datetime or a number")


def _expect(cursor: Cursor, kind: Kind | None, where: str) -> Cursor:
    if kind is not None and cursor.kind != kind:
        raise CursorError(f"{where} is a {cursor.kind} where the model's cursor is a {kind}")
    return cursor


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def highest(values: list[Cursor | None]) -> Cursor | None:
    best: Cursor | None = None
    for value in values:
        if value is not None and (best is None or best < value):
            best = value
    return best
