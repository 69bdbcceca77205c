"""Date and datetime columns whose API writes them another way than ISO 8601: a strptime pattern,
RFC 2822 (`format: rfc2822`, older APIs and mail systems) or Unix time in ms/us/ns (`unit:`).

ISO 8601 text is still read on such a column: the queue chain's page blobs carry ISO, and an API may
mix the two."""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from shared.config.models import RFC2822
from shared.errors import BadValue

T = TypeVar("T")
UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _utc(value: datetime) -> datetime:
    """Naive results are taken as UTC, like naive ISO text (docs/manifest-reference.md)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _from_epoch(value: Any, divisor: int) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise BadValue("expected Unix time as a number") from None
    if isinstance(value, int):
        whole, rest = divmod(value, divisor)   # integer arithmetic: no float rounding of ms/us/ns
        try:
            return datetime.fromtimestamp(whole, tz=UTC) + timedelta(microseconds=rest * 1_000_000 // divisor)
        except (OverflowError, OSError, ValueError):
            raise BadValue("expected Unix time within the years 1 to 9999") from None
    if not math.isfinite(value):
        raise BadValue("expected a datetime, got a non-finite number")
    try:
        return datetime.fromtimestamp(value / divisor, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise BadValue("expected Unix time within the years 1 to 9999") from None


def _from_text(text: str, pattern: str) -> datetime | None:
    """The text read by the column's format, or None when it does not match."""
    try:
        if pattern == RFC2822:
            return parsedate_to_datetime(text)
        return datetime.strptime(text, pattern)
    except (ValueError, TypeError, IndexError):
        return None


def datetime_reader(pattern: str | None, unit: str | None,
                    iso: Callable[[Any], datetime]) -> Callable[[Any], datetime]:
    """A datetime column's converter: the format for text, the unit for numbers, `iso` for the rest."""
    divisor = UNITS[unit or "s"]

    def read(value: Any) -> datetime:
        if type(value) is str and pattern is not None:
            parsed = _from_text(value.strip(), pattern)
            if parsed is not None:
                return _utc(parsed)
            if unit is None:
                return _iso_or_bad(value, iso, pattern)
        if unit is not None and (isinstance(value, (int, float, str)) and not isinstance(value, bool)):
            if isinstance(value, str) and not _numeric(value):
                return _iso_or_bad(value, iso, pattern)
            return _from_epoch(value, divisor)
        return iso(value)

    return read


def date_reader(pattern: str | None, unit: str | None, zone: tzinfo,
                iso: Callable[[Any], date]) -> Callable[[Any], date]:
    """A date column's converter: text without a zone reads as the date written; an instant (an
    offset in the text, or Unix time) takes its calendar date in the column's zone."""
    divisor = UNITS[unit or "s"]

    def read(value: Any) -> date:
        if type(value) is str and pattern is not None:
            parsed = _from_text(value.strip(), pattern)
            if parsed is not None:
                return parsed.date() if parsed.tzinfo is None else parsed.astimezone(zone).date()
            if unit is None:
                return _iso_or_bad(value, iso, pattern)
        if unit is not None and (isinstance(value, (int, float, str)) and not isinstance(value, bool)):
            if isinstance(value, str) and not _numeric(value):
                return _iso_or_bad(value, iso, pattern)
            return _from_epoch(value, divisor).astimezone(zone).date()
        return iso(value)

    return read


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _iso_or_bad(value: str, iso: Callable[[Any], T], pattern: str | None) -> T:
    try:
        return iso(value)
    except BadValue:
        raise BadValue(f"expected a datetime as '{pattern}' or ISO 8601") from None
