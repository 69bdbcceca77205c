"""Extraction errors. Messages carry identifiers (URL path, status, model, column), never record values.

Every message goes through `scrub_message` on its way in: messages are built from URLs (whose
query may hold an e-mail), an API's own error text and database lines, and those hold data.
"""
from __future__ import annotations

from typing import Any

from shared.detect.redact_message import safe_excerpt, safe_url, scrub_message


class ExtractError(Exception):
    """Base class: anything that stops a model's extraction."""

    def __init__(self, message: Any = "", *args: Any):
        super().__init__(scrub_message(message) if isinstance(message, str) else message, *args)


class FetchError(ExtractError):
    """An HTTP request failed for good: a fatal status, or retries exhausted."""

    def __init__(self, url: str, status: int | None, reason: str, attempts: int = 1, method: str = "GET",
                 hint: str = ""):
        url, reason = safe_url(url), safe_excerpt(reason)   # the API's own message may name a customer
        self.url, self.status, self.reason, self.attempts = url, status, reason, attempts
        status_text = f"HTTP {status}" if status is not None else "no response"
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"{method} {url} failed{tries}: {status_text} ({reason}){hint}")


class RateLimited(ExtractError):
    """Raised instead of sleeping when the caller prefers to reschedule (a queue-triggered function)."""

    def __init__(self, url: str, delay: float, method: str = "GET"):
        url = safe_url(url)
        self.url, self.delay = url, delay
        super().__init__(f"{method} {url} was rate limited; retry in {delay:.1f}s")


class PaginationError(ExtractError):
    """The API's paging does not make sense: a loop, a missing next value, a non-JSON page."""


class RecordPathError(ExtractError):
    """The configured `records` path is not in the response."""


class ConversionError(ExtractError):
    """A value does not convert to its column's type."""


class BadValue(ValueError):
    """A value does not convert; the message says what was expected, not what was found."""
