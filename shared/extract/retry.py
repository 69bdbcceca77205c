"""Retry policy: which failures are worth another attempt, and how long to wait before it.

Pure functions, no I/O and no sleeping, so the policy is tested without a server and the client's
loop stays a plain sequence of decisions.
"""
from __future__ import annotations

import http.client
import math
import random
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Literal

import requests.exceptions as rex
import urllib3.exceptions as u3

Verdict = Literal["ok", "retry", "fatal"]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 3600.0   # a server asking for more than an hour is broken or means "not today"

# Malformed requests and TLS failures fail the same way every time: retrying only delays the error.
# Listed before the transient ones because SSLError is a ConnectionError and all are OSErrors.
_FATAL_EXCEPTIONS: tuple[type[BaseException], ...] = (
    rex.SSLError, rex.InvalidURL, rex.InvalidSchema, rex.MissingSchema, rex.InvalidHeader,
    rex.URLRequired, rex.TooManyRedirects,
)
# requests wraps most of these, but a body read can surface the raw urllib3/http.client ones.
_TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    rex.ConnectionError, rex.Timeout, rex.ChunkedEncodingError, rex.ContentDecodingError,
    u3.ProtocolError, u3.TimeoutError,
    http.client.RemoteDisconnected, http.client.IncompleteRead, ConnectionError, TimeoutError,
)
_DELTA_SECONDS = re.compile(r"^-?\d+(\.\d+)?$")


def classify(status: int | None, exc: BaseException | None) -> Verdict:
    """The verdict on one attempt. A response status wins over an exception only when there is
    no exception: a body that broke off mid-read is a retry even if the status line said 200."""
    if exc is not None:
        if isinstance(exc, _FATAL_EXCEPTIONS):
            return "fatal"
        return "retry" if isinstance(exc, _TRANSIENT_EXCEPTIONS) else "fatal"
    if status is None:
        raise ValueError("classify needs a status or an exception")
    if 200 <= status < 300:
        return "ok"
    if status in RETRY_STATUSES or status >= 500:
        return "retry"
    return "fatal"   # 1xx, 3xx that requests did not follow (no Location), and the other 4xx


def parse_retry_after(value: str | None, now: datetime, cap: float = MAX_RETRY_AFTER) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None when the
    header is absent or unreadable, so the caller falls back to its own backoff."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.match(value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        seconds = (_aware(when) - _aware(now)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff (AWS "Exponential Backoff and Jitter"): uniform in
    [0, min(cap, base * 2**(attempt-1))]. Jitter spreads out clients that failed together so they
    do not retry in lockstep; `attempt` is 1 for the first retry."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, not {attempt}")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))   # the exponent cap avoids float overflow
    return rng.uniform(0.0, max(ceiling, 0.0))


def _aware(moment: datetime) -> datetime:
    """HTTP dates are GMT; a naive datetime (from '-0000' or a caller's utcnow) is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- describing failures
# Error messages name what failed, never what was sent or received: an exception's own text can
# hold the full URL (query string and API key included) and a body can echo anything.
REASON_LIMIT = 120


def describe_exception(exc: BaseException) -> str:
    """'ConnectionError (RemoteDisconnected)': the class names along the wrapping chain, which say
    what went wrong without repeating the URL that requests and urllib3 put in their messages."""
    names, seen, current = [type(exc).__name__], {id(exc)}, exc
    while True:
        inner = _wrapped(current)
        if inner is None or id(inner) in seen:
            break
        seen.add(id(inner))
        names.append(type(inner).__name__)
        current = inner
    innermost = names[-1] if len(names) > 1 and names[-1] != names[0] else None
    return f"{names[0]} ({innermost})" if innermost else names[0]


def short_reason(response) -> str:
    """The API's own one-line explanation (JSON `error`/`message`/`detail`), else the reason phrase."""
    text = None
    if len(response.content or b"") <= 65536:
        try:
            body = response.json()
        except ValueError:
            body = None
        text = _message_in(body)
    text = text or response.reason or "no reason given"
    text = " ".join(str(text).split())
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 3] + "..."


def _message_in(body) -> str | None:
    if not isinstance(body, dict):
        return None
    for key in ("error_description", "message", "error", "detail", "title"):
        value = body.get(key)
        if isinstance(value, dict):   # {"error": {"code": ..., "message": ...}}
            value = _message_in(value)
        if isinstance(value, (str, int)) and str(value).strip():
            return str(value)
    return None


def _wrapped(exc: BaseException) -> BaseException | None:
    reason = getattr(exc, "reason", None)           # urllib3 MaxRetryError
    if isinstance(reason, BaseException):
        return reason
    for arg in getattr(exc, "args", ()):            # requests/urllib3 wrap the cause in args
        if isinstance(arg, BaseException):
            return arg
    return exc.__cause__ or exc.__context__
