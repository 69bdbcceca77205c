"""Retry policy: which failures are worth another attempt, and how long to wait before it.

Pure functions, no I/O and no sleeping, so the policy is tested without a server and the client's
loop stays a plain sequence of decisions.
"""
from __future__ import annotations

import http.client
import json
import math
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import requests
import requests.exceptions as rex
import urllib3.exceptions as u3

from shared.extract.limits import LimitExceeded
from shared.extract.quota import read_quota

Verdict = Literal["ok", "retry", "fatal"]

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# What the server asks is returned as asked (the client compares it with `max_backoff`); this only
# keeps an absurd value a finite float: a hundred years.
MAX_RETRY_AFTER = 100 * 365 * 86400.0
# A 403 is a rate limit when the answer says so. GitHub, primary and secondary limits:
# https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
# ("403 or 429", `retry-after`, `x-ratelimit-remaining: 0` with `x-ratelimit-reset`, or a message
# naming the secondary rate limit). Google APIs: https://developers.google.com/drive/api/guides/handle-errors
# and https://cloud.google.com/storage/docs/json_api/v1/status-codes (403 with reason
# `rateLimitExceeded` or `userRateLimitExceeded`). `dailyLimitExceeded` is not retried: it lasts the day.
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_RATE_LIMIT_MESSAGE = re.compile(r"secondary rate limit|rate limit exceeded", re.I)

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


def unsent(exc: BaseException | None) -> bool:
    """The request never reached the server (no connection was made), so sending it again cannot
    repeat anything: what makes a POST that is not idempotent safe to retry after an error."""
    if isinstance(exc, rex.ConnectTimeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, u3.NewConnectionError):
            return True
        seen.add(id(current))
        current = _wrapped(current)
    return False


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


def is_rate_limited(status: int | None, headers: Mapping[str, str], content: bytes | None) -> bool:
    """A 429, or a 403 whose answer says it is a rate limit (see RATE_LIMIT_REASONS): those are
    retried after the wait the server asks, the others are refusals and fatal."""
    if status == 429:
        return True
    if status != 403:
        return False
    for name in ("Retry-After", "X-RateLimit-Remaining", "RateLimit-Remaining"):
        value = headers.get(name)
        if value is not None and (name == "Retry-After" or value.strip() == "0"):
            return True
    return _body_says_rate_limit(content)


def server_wait(headers: Mapping[str, str], now: datetime, rate_limited: bool) -> float | None:
    """Seconds the server asks to wait: Retry-After, else (for a rate limit) until the reset of a
    quota it says is spent (`RateLimit-*`, `X-RateLimit-*`: `shared/extract/quota.py`)."""
    wait = parse_retry_after(headers.get("Retry-After"), now)
    if wait is not None or not rate_limited:
        return wait
    quota = read_quota(headers, _aware(now).timestamp())
    if quota is None or quota.remaining > 0:
        return None
    return min(quota.reset, MAX_RETRY_AFTER)


def _body_says_rate_limit(content: bytes | None) -> bool:
    if not content or len(content) > 65536:
        return False
    try:
        body: Any = json.loads(content)
    except (ValueError, RecursionError):
        return False
    if not isinstance(body, dict):
        return False
    error = body.get("error")
    if isinstance(error, dict):   # Google: {"error": {"errors": [{"reason": "rateLimitExceeded"}], ...}}
        details = error.get("errors")
        if isinstance(details, list) and any(isinstance(d, dict) and d.get("reason") in RATE_LIMIT_REASONS
                                             for d in details):
            return True
    message = body.get("message")   # GitHub: {"message": "You have exceeded a secondary rate limit..."}
    return isinstance(message, str) and bool(_RATE_LIMIT_MESSAGE.search(message))


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
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------- describing failures
# Error messages name what failed, never what was sent or received: an exception's own text can
# hold the full URL (query string and API key included) and a body can echo anything.
REASON_LIMIT = 120


def describe_exception(exc: BaseException) -> str:
    """'ConnectionError (RemoteDisconnected)': the class names along the wrapping chain, which say
    what went wrong without repeating the URL that requests and urllib3 put in their messages."""
    if isinstance(exc, LimitExceeded):
        return str(exc)   # our own message: the setting that was passed
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


def short_reason(response: requests.Response) -> str:
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


def _message_in(body: object) -> str | None:
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
