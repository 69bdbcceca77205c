"""Client-side politeness: a token bucket for the request rate and a semaphore for concurrency.

Both are per HTTP client (one client per source run), shared by every thread that fetches for it,
so a source's `throttle:` settings hold however many pages are fetched in parallel.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Floating-point refill arithmetic can leave 0.9999999 of a token after sleeping exactly the
# computed wait; without this slack an acquirer would sleep again for a nanosecond.
_EPSILON = 1e-9
SLOW_DOWN = 0.9          # each 429 takes 10% off the rate...
SLOW_DOWN_FLOOR = 0.5    # ...down to half the configured rate at most
# Paced by a rate the server announced, a bucket of one token loses every late wake-up (the token
# it would have saved overflows); two keep that time, at the cost of two requests back to back.
POLICY_BURST = 2


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; `rate=None` means unlimited.

    Acquirers never hold the lock while sleeping: they compute how long until a token could be
    free, sleep, and look again. Several threads may wake for the same token; one wins and the
    others go back to sleep, which costs a few wake-ups but can never exceed the rate (a
    reservation scheme would, once `pause_until` moves the goal posts under sleeping threads).

    `clock` and `sleep` must agree (a fake sleep has to advance the fake clock), otherwise a
    waiting acquirer would spin forever.
    """

    def __init__(self, rate: float | None, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be positive or None, not {rate}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self.rate, self.burst = rate, burst
        self._configured_rate = rate
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)        # start full: the first `burst` requests go at once
        self._updated = clock()
        self._paused_until = float("-inf")

    def acquire(self) -> None:
        """Block until a token is free, then take it."""
        while True:
            with self._lock:
                wait = self._wait_locked(self._clock())
                if wait <= 0:
                    if self.rate is not None:
                        self._tokens -= 1
                    return
            self._sleep(wait)

    def pause_until(self, until: float) -> None:
        """Hold every acquirer until clock time `until`: after a 429 the whole source backs off,
        not just the thread that was told to. An earlier pause never shortens a later one."""
        with self._lock:
            self._paused_until = max(self._paused_until, until)

    def slow_down(self, factor: float = SLOW_DOWN, floor: float = SLOW_DOWN_FLOOR) -> None:
        """After a 429 at the configured rate, the API's own clock disagrees with ours (jitter, a
        stricter window): run a little slower for the rest of the run, down to `floor` of the
        configured rate, instead of meeting the same limit again every few requests."""
        with self._lock:
            if self.rate is not None and self._configured_rate is not None:   # None together: unlimited
                self.rate = max(self.rate * factor, self._configured_rate * floor)

    def limit_to(self, rate: float) -> None:
        """The server announced its sustained rate (`RateLimit-Policy`): never run faster than it,
        whatever the manifest says (a rate already lower, slowed down after a 429 or not, stays)."""
        with self._lock:
            if rate <= 0 or (self._configured_rate is not None and self._configured_rate <= rate):
                return
            now = self._clock()
            if self.rate is None:   # the manifest declared no rate: the pace and its slack are ours
                self.burst = max(self.burst, POLICY_BURST)
                self._tokens, self._updated = min(self._tokens, float(self.burst)), now
            self._configured_rate = rate
            self.rate = rate if self.rate is None else min(self.rate, rate)

    def delay_for_next(self) -> float:
        """Seconds until `acquire` would return, without taking a token (to schedule messages)."""
        with self._lock:
            return max(0.0, self._wait_locked(self._clock()))

    def _wait_locked(self, now: float) -> float:
        if now < self._paused_until:
            return self._paused_until - now
        if self.rate is None:
            return 0.0
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self._tokens >= 1 - _EPSILON:
            return 0.0
        return (1 - self._tokens) / self.rate


class ConcurrencyLimit:
    """At most `limit` HTTP attempts in flight. A slot covers one attempt, not the retry waits,
    so a thread sleeping off a backoff does not block its siblings."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"concurrency must be at least 1, not {limit}")
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._semaphore:
            yield
