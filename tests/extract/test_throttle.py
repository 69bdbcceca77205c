"""Token bucket and concurrency limit: deterministic with a fake clock, plus one short real-time run."""
from __future__ import annotations

import threading
import time

import pytest

from shared.extract.throttle import ConcurrencyLimit, TokenBucket
from tests.helpers.http_stub import FakeTime


def bucket(rate, burst=1):
    fake = FakeTime()
    return TokenBucket(rate, burst, clock=fake.clock, sleep=fake.sleep), fake


def test_burst_is_free_then_rate_applies():
    b, fake = bucket(rate=10, burst=3)
    for _ in range(3):
        b.acquire()
    assert fake.sleeps == []
    b.acquire()
    assert fake.sleeps == [pytest.approx(0.1)]


def test_sustained_rate():
    b, fake = bucket(rate=4, burst=1)
    start = fake.now
    for _ in range(9):
        b.acquire()
    # the first token is there at once, the next eight take 1/4 s each
    assert fake.now - start == pytest.approx(2.0)
    assert all(s == pytest.approx(0.25) for s in fake.sleeps)


def test_idle_time_refills_only_up_to_burst():
    b, fake = bucket(rate=2, burst=2)
    b.acquire(), b.acquire()
    fake.advance(100)
    b.acquire(), b.acquire()
    assert fake.sleeps == []
    b.acquire()
    assert fake.sleeps == [pytest.approx(0.5)]


def test_unlimited_never_waits():
    b, fake = bucket(rate=None, burst=1)
    for _ in range(1000):
        b.acquire()
    assert fake.sleeps == []
    assert b.delay_for_next() == 0


def test_pause_until_holds_acquirers_even_when_unlimited():
    for rate in (None, 100.0):
        b, fake = bucket(rate=rate, burst=5)
        b.pause_until(fake.now + 5)
        b.acquire()
        assert sum(fake.sleeps) == pytest.approx(5)


def test_an_earlier_pause_does_not_shorten_a_later_one():
    b, fake = bucket(rate=None)
    b.pause_until(fake.now + 10)
    b.pause_until(fake.now + 2)
    assert b.delay_for_next() == pytest.approx(10)


def test_delay_for_next_does_not_take_a_token():
    b, fake = bucket(rate=2, burst=1)
    assert b.delay_for_next() == 0
    assert b.delay_for_next() == 0
    b.acquire()
    assert b.delay_for_next() == pytest.approx(0.5)
    fake.advance(0.2)
    assert b.delay_for_next() == pytest.approx(0.3)
    b.pause_until(fake.now + 4)
    assert b.delay_for_next() == pytest.approx(4)
    assert fake.sleeps == []


@pytest.mark.parametrize("rate, burst", [(0, 1), (-1, 1), (1, 0)])
def test_rejects_nonsense(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_threads_together_never_exceed_the_rate():
    rate, n, threads = 50.0, 30, 6
    b = TokenBucket(rate, burst=1)
    stamps: list[float] = []
    lock = threading.Lock()
    remaining = iter(range(n))

    def worker():
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            b.acquire()
            with lock:
                stamps.append(time.monotonic())

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=5)
    stamps.sort()
    assert len(stamps) == n
    # n tokens need (n - burst) / rate seconds; a little slack for timer granularity
    assert stamps[-1] - start >= (n - 1) / rate - 0.02
    window = 0.2   # at most rate*window tokens plus the one at the window's edge (and one of slack)
    for i, t0 in enumerate(stamps):
        assert sum(1 for t in stamps[i:] if t < t0 + window) <= rate * window + 2


def test_concurrency_limit_holds():
    limit = ConcurrencyLimit(2)
    active = peak = 0
    lock = threading.Lock()

    def worker():
        nonlocal active, peak
        with limit.slot():
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.01)
            with lock:
                active -= 1

    pool = [threading.Thread(target=worker) for _ in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert peak == 2
    with pytest.raises(ValueError):
        ConcurrencyLimit(0)


def test_slow_down_lowers_the_rate_to_a_floor():
    from shared.extract.throttle import TokenBucket

    bucket = TokenBucket(10.0, 1)
    bucket.slow_down()
    assert bucket.rate == pytest.approx(9.0)
    for _ in range(20):
        bucket.slow_down()
    assert bucket.rate == pytest.approx(5.0)
    unlimited = TokenBucket(None, 1)
    unlimited.slow_down()
    assert unlimited.rate is None
