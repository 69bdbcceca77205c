"""Retry policy: the classification table, Retry-After parsing, backoff bounds, safe descriptions."""
from __future__ import annotations

import http.client
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import requests.exceptions as rex
import urllib3.exceptions as u3

from shared.extract.limits import DeadlineExceeded, ResponseTooLarge
from shared.extract.retry import (
    MAX_RETRY_AFTER,
    REASON_LIMIT,
    backoff_delay,
    classify,
    describe_exception,
    is_rate_limited,
    parse_retry_after,
    server_wait,
    short_reason,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("status, verdict", [
    (200, "ok"), (201, "ok"), (204, "ok"), (299, "ok"),
    (429, "retry"), (408, "retry"), (500, "retry"), (502, "retry"), (503, "retry"), (504, "retry"),
    (507, "retry"), (599, "retry"),
    (400, "fatal"), (401, "fatal"), (403, "fatal"), (404, "fatal"), (409, "fatal"), (422, "fatal"),
    (301, "fatal"), (304, "fatal"), (100, "fatal"),
])
def test_classify_status(status, verdict):
    assert classify(status, None) == verdict


def _remote_disconnected() -> rex.ConnectionError:
    inner = http.client.RemoteDisconnected("Remote end closed connection without response")
    return rex.ConnectionError(u3.ProtocolError("Connection aborted.", inner))


@pytest.mark.parametrize("exc", [
    rex.ConnectionError("refused"), rex.ConnectTimeout("slow"), rex.ReadTimeout("slow"),
    rex.ChunkedEncodingError("cut"), _remote_disconnected(), http.client.RemoteDisconnected("gone"),
    ConnectionResetError(104, "reset"), u3.ProtocolError("Connection aborted."), TimeoutError(),
])
def test_classify_transient_exceptions(exc):
    assert classify(None, exc) == "retry"
    assert classify(200, exc) == "retry"   # a body that broke off is not a success


@pytest.mark.parametrize("exc", [
    rex.SSLError("bad certificate"), rex.InvalidURL("x"), rex.MissingSchema("x"), rex.InvalidSchema("x"),
    rex.TooManyRedirects("loop"), ValueError("bug"), KeyError("bug"),
])
def test_classify_fatal_exceptions(exc):
    assert classify(None, exc) == "fatal"


def test_classify_needs_something():
    with pytest.raises(ValueError):
        classify(None, None)


@pytest.mark.parametrize("value, seconds", [
    ("120", 120.0), (" 5 ", 5.0), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0),
    (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
    (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
    ("Sat, 01 Mar 2025 12:01:00 GMT", 60.0),
    ("Sat, 01 Mar 2025 12:01:00 -0000", 60.0),
    ("999999", 999999.0),                                         # as asked: the client compares it
    (format_datetime(NOW + timedelta(days=3), usegmt=True), 3 * 86400.0),
    ("1000000000", 1e9),
    ("99999999999999", MAX_RETRY_AFTER),                            # absurd: kept a finite float
    ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
])
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "12s", "Someday, 99 Foo 2025", "1e400", "nan"])
def test_parse_retry_after_garbage(value):
    assert parse_retry_after(value, NOW) is None


def test_parse_retry_after_accepts_a_naive_now_as_utc():
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:10 GMT", NOW.replace(tzinfo=None)) == pytest.approx(10)


def test_backoff_stays_within_full_jitter_bounds():
    rng = random.Random(7)
    base, cap = 0.5, 8.0
    for attempt in range(1, 12):
        ceiling = min(cap, base * 2 ** (attempt - 1))
        samples = [backoff_delay(attempt, base, cap, rng) for _ in range(300)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > 0.8 * ceiling      # the whole range is used: it is jitter, not a constant
        assert min(samples) < 0.2 * ceiling


def test_backoff_is_reproducible_and_survives_huge_attempts():
    assert backoff_delay(3, 1, 60, random.Random(1)) == backoff_delay(3, 1, 60, random.Random(1))
    assert 0 <= backoff_delay(100_000, 1.0, 30.0, random.Random(1)) <= 30.0
    assert backoff_delay(4, 0.0, 30.0, random.Random(1)) == 0.0
    with pytest.raises(ValueError):
        backoff_delay(0, 1, 2, random.Random(1))


def test_describe_exception_names_the_cause_but_not_the_url():
    exc = rex.ConnectionError(u3.MaxRetryError(None, "/data?api_key=SECRET", u3.NewConnectionError(None, "refused")))
    text = describe_exception(exc)
    assert text == "ConnectionError (NewConnectionError)"
    assert describe_exception(_remote_disconnected()) == "ConnectionError (RemoteDisconnected)"
    assert describe_exception(rex.ReadTimeout("x")) == "ReadTimeout"


def _response(status: int, content: bytes, reason: str = "Reason") -> requests.Response:
    r = requests.Response()
    r.status_code, r._content, r.reason, r.encoding = status, content, reason, "utf-8"
    return r


@pytest.mark.parametrize("content, reason", [
    (b'{"error": "no such invoice"}', "no such invoice"),
    (b'{"message": "quota\\n exceeded"}', "quota exceeded"),
    (b'{"error": {"code": 42, "message": "nested"}}', "nested"),
    (b'{"error": "invalid_client", "error_description": "client unknown"}', "client unknown"),
    (b'{"data": []}', "Not Found"),
    (b"<html>nope</html>", "Not Found"),
    (b"", "Not Found"),
])
def test_short_reason(content, reason):
    assert short_reason(_response(404, content, "Not Found")) == reason


def test_short_reason_is_truncated():
    text = short_reason(_response(400, b'{"message": "%s"}' % (b"x" * 500)))
    assert len(text) == REASON_LIMIT and text.endswith("...")


# ---------------------------------------------------------------- 403 rate limits
# GitHub: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
GITHUB_SECONDARY = (b'{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you '
                    b'try again.", "documentation_url": '
                    b'"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}')
GITHUB_PRIMARY = (b'{"message": "API rate limit exceeded for 203.0.113.42.", "documentation_url": '
                  b'"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}')
# Google: https://developers.google.com/drive/api/guides/handle-errors
GOOGLE = (b'{"error": {"errors": [{"domain": "usageLimits", "reason": "%s", "message": "Rate Limit Exceeded"}], '
          b'"code": 403, "message": "Rate Limit Exceeded"}}')


@pytest.mark.parametrize("status, headers, body, limited", [
    (429, {}, b"", True),
    (403, {"Retry-After": "60"}, b"", True),
    (403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1740830460"}, GITHUB_PRIMARY, True),
    (403, {}, GITHUB_SECONDARY, True),
    (403, {"X-RateLimit-Remaining": "0"}, b"", True),
    (403, {}, GOOGLE % b"rateLimitExceeded", True),
    (403, {}, GOOGLE % b"userRateLimitExceeded", True),
    (403, {}, GOOGLE % b"dailyLimitExceeded", False),      # lasts the day: not worth retrying
    (403, {}, b'{"message": "Resource not accessible by integration"}', False),
    (403, {"X-RateLimit-Remaining": "4999"}, b'{"message": "Must have admin rights"}', False),
    (403, {}, b"<html>forbidden</html>", False),
    (403, {}, b"[" * 5000, False),                         # hostile body: no RecursionError
    (401, {"Retry-After": "5"}, b"", False),
    (200, {"X-RateLimit-Remaining": "0"}, b"", False),
])
def test_is_rate_limited(status, headers, body, limited):
    assert is_rate_limited(status, requests.structures.CaseInsensitiveDict(headers), body) is limited


def test_server_wait_reads_retry_after_first_then_the_reset_time():
    headers = requests.structures.CaseInsensitiveDict
    reset = int(NOW.timestamp()) + 90
    assert server_wait(headers({"Retry-After": "30", "X-RateLimit-Remaining": "0",
                                "X-RateLimit-Reset": str(reset)}), NOW, True) == 30.0
    assert server_wait(headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}), NOW, True) == 90.0
    assert server_wait(headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "15"}), NOW, True) == 15.0
    assert server_wait(headers({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": str(reset)}), NOW, True) is None
    assert server_wait(headers({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}), NOW, False) is None
    assert server_wait(headers({}), NOW, True) is None


def test_our_limits_describe_themselves_and_classify():
    too_large = ResponseTooLarge("response body over throttle.max_response_mb=1 (after decompression)")
    late = DeadlineExceeded("no complete answer within throttle.timeout=2s")
    assert describe_exception(too_large) == str(too_large) and describe_exception(late) == str(late)
    assert classify(None, too_large) == "fatal" and classify(None, late) == "retry"
