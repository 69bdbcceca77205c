"""Slowing down before the 429: the quota a server announces in its rate-limit headers.

Read from the IETF draft's fields (https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/:
`RateLimit-Remaining`/`RateLimit-Reset` in delta seconds, or one `RateLimit` field with `remaining=`/`reset=`,
`r=`/`t=` in later revisions) and from the common `X-RateLimit-Remaining`/`X-RateLimit-Reset`, whose reset
is a Unix time at GitHub (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api)
and a delay elsewhere. The client spends the quota and, once no request is left in it (counting those
already in flight), holds every thread until the reset instead of meeting the 429.
"""
from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

EPOCH_SECONDS = 1e9   # a reset above this is a Unix time, below it a delay
_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_PARAM = re.compile(r"(?:^|[;,\s])(remaining|reset|r|t)\s*=\s*(-?\d+(?:\.\d+)?)", re.I)


@dataclass(frozen=True)
class Quota:
    remaining: int      # requests the server will still take before the reset
    reset: float        # seconds from now until the quota is whole again


def read_quota(headers: Mapping[str, str], now_epoch: float) -> Quota | None:
    """The quota an answer announces, None when it announces none (or nothing readable)."""
    for remaining_name, reset_name in (("RateLimit-Remaining", "RateLimit-Reset"),
                                       ("X-RateLimit-Remaining", "X-RateLimit-Reset")):
        remaining, reset = _number(headers.get(remaining_name)), _number(headers.get(reset_name))
        if remaining is not None and reset is not None:
            return _quota(remaining, reset, now_epoch)
    combined = headers.get("RateLimit")
    if combined:
        params = {k.lower(): float(v) for k, v in _PARAM.findall(combined)}
        remaining = params.get("remaining", params.get("r"))
        reset = params.get("reset", params.get("t"))
        if remaining is not None and reset is not None:
            return _quota(remaining, reset, now_epoch)
    return None


def _number(value: str | None) -> float | None:
    if value is None or not _NUMBER.match(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _quota(remaining: float, reset: float, now_epoch: float) -> Quota:
    if reset > EPOCH_SECONDS:
        reset -= now_epoch
    return Quota(max(int(remaining), 0), max(reset, 0.0))


def read_policy(headers: Mapping[str, str]) -> float | None:
    """The sustained rate (requests/s) a `RateLimit-Policy` field announces: `q;w=s` (draft 07) or
    `"name";q=..;w=..` (later drafts), the strictest of several policies; None without one."""
    field = headers.get("RateLimit-Policy")
    if not field:
        return None
    rates = []
    for policy in field.split(","):
        quota = re.search(r"(?:^|;)\s*q\s*=\s*(\d+(?:\.\d+)?)", policy) \
            or re.match(r"\s*(\d+(?:\.\d+)?)\s*(?:;|$)", policy)
        window = re.search(r";\s*w\s*=\s*(\d+(?:\.\d+)?)", policy)
        if quota and window and float(window.group(1)) > 0:
            rates.append(float(quota.group(1)) / float(window.group(1)))
    return min(rates) if rates else None


class QuotaGate:
    """The latest announced quota, less the requests sent since the answer that announced it.

    Each request takes a ticket (`take`); an answer's quota (`observe`) counts from its own ticket,
    so requests sent after it, in flight or not yet counted by the server, are taken off. An
    announcement older than the newest one seen is ignored; one past its reset is forgotten.
    """

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._lock = threading.Lock()
        self._sent = 0
        self._ticket = 0               # the ticket of the newest answer with a quota
        self._remaining: int | None = None
        self._reset_at = 0.0

    def take(self) -> tuple[int, float]:
        """(ticket, 0) when a request may go now; (0, seconds) until the quota resets otherwise."""
        with self._lock:
            now = self._clock()
            if self._remaining is not None and now >= self._reset_at:
                self._remaining = None
            if self._remaining is not None and self._remaining - (self._sent - self._ticket) < 1:
                return 0, self._reset_at - now
            self._sent += 1
            return self._sent, 0.0

    def waited(self) -> None:
        """The client has just waited out what a rate-limited answer asked (its Retry-After or this
        quota's reset, read on another clock reading): the quota it announced is over."""
        with self._lock:
            self._remaining = None

    def observe(self, ticket: int, quota: Quota | None) -> None:
        if quota is None or ticket < self._ticket:
            return
        with self._lock:
            if ticket >= self._ticket:
                self._ticket, self._remaining = ticket, quota.remaining
                self._reset_at = self._clock() + quota.reset
