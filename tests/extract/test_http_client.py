"""HttpClient against the stub server: retries, Retry-After, limits, auth refresh, safe error messages."""
from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from shared.config.models import OAuth2ClientCredentials, Throttle
from shared.errors import FetchError, RateLimited
from shared.extract.auth import ApiKeyQueryAuth, BearerTokenAuth, OAuth2ClientCredentialsAuth
from shared.extract.http_client import HttpClient
from shared.extract.types import PageRequest
from tests.helpers.http_stub import FakeTime, Reply, Seen, StubServer

KEY = "k3y/+&=SECRET"


def client(fake: FakeTime | None = None, on_rate_limit="wait", **throttle) -> HttpClient:
    """A client whose waits are recorded on `fake` instead of slept."""
    fake = fake or FakeTime()
    settings = {"max_retries": 3, "backoff": 0.5, "max_backoff": 4.0, "timeout": 5.0, **throttle}
    return HttpClient(source="test", throttle=Throttle(**settings), on_rate_limit=on_rate_limit,
                      rng=random.Random(3), sleep=fake.sleep, clock=fake.clock)


def test_success_sends_headers_and_params_and_decodes():
    with StubServer([Reply(200, {"items": [1, 2]}, headers={"X-Total": "2"})]) as server:
        http = HttpClient(source="s", throttle=Throttle(), headers={"X-Source": "a", "X-Both": "source"})
        response = http.fetch(PageRequest(server.url(), {"page": 2}, {"X-Both": "model"}))
        http.close()
    seen = server.seen()[0]
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["X-Source"] == "a" and seen.headers["X-Both"] == "model"
    assert response.url == server.url() + "?page=2"
    assert response.status == 200 and response.body == {"items": [1, 2]}
    assert response.headers["x-total"] == "2"
    assert response.content == b'{"items": [1, 2]}'
    assert http.stats.snapshot() == {"requests": 1, "retries": 0, "throttled": 0, "errors": 0,
                                     "bytes": len(response.content)}


def test_transient_503s_then_success():
    fake = FakeTime()
    with StubServer([Reply(503), Reply(503), Reply(200, [1])]) as server:
        http = client(fake)
        response = http.fetch(PageRequest(server.url()))
    assert response.body == [1] and server.count == 3
    assert http.stats.requests == 3 and http.stats.retries == 2
    assert len(fake.sleeps) == 2
    assert 0 <= fake.sleeps[0] <= 0.5 and 0 <= fake.sleeps[1] <= 1.0   # full jitter under base * 2**n
    assert response.elapsed == pytest.approx(sum(fake.sleeps))


def test_retry_after_seconds_is_honoured_and_pauses_the_whole_source():
    fake = FakeTime()
    paused_for: list[float] = []
    with StubServer([Reply(429, {"error": "slow down"}, headers={"Retry-After": "7"}), Reply(200, {})]) as server:
        http = client(fake, max_backoff=10)

        def sleep(seconds):      # while this thread waits, a sibling would see the bucket paused
            paused_for.append(http.bucket.delay_for_next())
            fake.sleep(seconds)
        http._sleep = sleep
        http.fetch(PageRequest(server.url()))
    assert fake.sleeps == [7.0] and paused_for == [pytest.approx(7.0)]
    assert http.stats.throttled == 1 and http.stats.retries == 1


def test_retry_after_http_date_on_503():
    fake = FakeTime()
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    with StubServer([Reply(503, headers={"Retry-After": when}), Reply(200, {})]) as server:
        client(fake, max_backoff=30).fetch(PageRequest(server.url()))
    assert 18 <= fake.sleeps[0] <= 20


def test_dropped_connections_are_retried():
    fake = FakeTime()
    with StubServer([Reply(drop=True), Reply(drop=True), Reply(200, {"ok": 1})]) as server:
        http = client(fake)
        assert http.fetch(PageRequest(server.url())).body == {"ok": 1}
    assert server.count == 3 and http.stats.retries == 2


@pytest.mark.parametrize("reply, reason", [
    (Reply(404, {"error": "no such invoice"}), "no such invoice"),
    (Reply(403, "<html>forbidden by policy</html>"), "Forbidden"),
    (Reply(400, {"message": "x" * 1000}), "x" * 100),
])
def test_permanent_errors_fail_at_once(reply, reason):
    fake = FakeTime()
    with StubServer([reply]) as server:
        http = client(fake)
        with pytest.raises(FetchError) as caught:
            http.fetch(PageRequest(server.url("/invoices"), {"page": 3}))
    error = caught.value
    message = str(error)
    assert server.url("/invoices") + "?page=…" in message and f"HTTP {reply.status}" in message   # names, no values
    assert reason in message and "x" * 200 not in message          # a short reason, never the body
    assert error.status == reply.status and error.attempts == 1
    assert server.count == 1 and fake.sleeps == [] and http.stats.errors == 1


def test_exhausted_retries_report_attempts_and_last_status():
    fake = FakeTime()
    with StubServer(default=Reply(502)) as server:
        http = client(fake, max_retries=2)
        with pytest.raises(FetchError) as caught:
            http.fetch(PageRequest(server.url()))
    assert caught.value.attempts == 3 and caught.value.status == 502
    assert "after 3 attempts" in str(caught.value) and "HTTP 502" in str(caught.value)
    assert server.count == 3 and len(fake.sleeps) == 2


def test_exhausted_retries_on_dropped_connections():
    with StubServer(default=Reply(drop=True)) as server:
        with pytest.raises(FetchError, match=r"after 2 attempts: no response \(gave up: ConnectionError"):
            client(max_retries=1).fetch(PageRequest(server.url()))


def test_concurrency_limit_with_16_threads():
    with StubServer(default=Reply(200, {}, delay=0.03)) as server:
        http = HttpClient(source="s", throttle=Throttle(concurrency=3))
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: http.fetch(PageRequest(server.url(), {"i": i})), range(48)))
        http.close()
    assert server.count == 48
    assert 2 <= server.max_in_flight <= 3


def test_rate_limit_over_a_short_run():
    n = 26   # 1.25 s at 20/s
    with StubServer() as server:
        http = HttpClient(source="s", throttle=Throttle(rate=20, burst=1, concurrency=4))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda i: http.fetch(PageRequest(server.url(), {"i": i})), range(n)))
        http.close()
    stamps = sorted(s.at for s in server.seen())
    assert stamps[-1] - stamps[0] >= (n - 1) / 20 - 0.05
    # 20 per second plus the one on the window's edge; one more of slack for network jitter
    busiest = max(sum(1 for t in stamps[i:] if t < t0 + 1.0) for i, t0 in enumerate(stamps))
    assert busiest <= 22


def test_raise_on_rate_limit():
    fake = FakeTime()
    with StubServer([Reply(429, headers={"Retry-After": "12"})]) as server:
        http = HttpClient(source="s", throttle=Throttle(), on_rate_limit="raise", sleep=fake.sleep, clock=fake.clock)
        with pytest.raises(RateLimited) as caught:
            http.fetch(PageRequest(server.url()))
    assert caught.value.delay == 12.0 and caught.value.url == server.url()
    assert fake.sleeps == [] and server.count == 1 and http.stats.throttled == 1
    assert http.bucket.delay_for_next() == pytest.approx(12.0)


def test_raise_on_rate_limit_without_retry_after_still_gives_a_delay():
    with StubServer([Reply(429)]) as server:
        with pytest.raises(RateLimited) as caught:
            client(on_rate_limit="raise").fetch(PageRequest(server.url()))
    assert caught.value.delay > 0


class ApiWithTokens:
    """POST /token hands out tok1, tok2, ...; GET /data rejects every token in `rejected`."""

    def __init__(self, rejected):
        self.rejected, self.issued, self.lock = rejected, 0, threading.Lock()

    def __call__(self, seen: Seen) -> Reply:
        if seen.path == "/token":
            with self.lock:
                self.issued += 1
                return Reply(200, {"access_token": f"tok{self.issued}", "expires_in": 3600})
        if seen.headers.get("Authorization", "").removeprefix("Bearer ") in self.rejected:
            return Reply(401, {"error": "token expired"})
        return Reply(200, {"ok": True})


def oauth_client(server, fake):
    session = requests.Session()
    config = OAuth2ClientCredentials(type="oauth2_client_credentials", token_url=server.url("/token"),
                                     client_id="c", client_secret="shh")
    auth = OAuth2ClientCredentialsAuth(config, session)
    return HttpClient(source="s", throttle=Throttle(), auth=auth, session=session, sleep=fake.sleep, clock=fake.clock)


def test_401_refreshes_the_token_once():
    fake = FakeTime()
    with StubServer(handler=ApiWithTokens({"tok1"})) as server:
        http = oauth_client(server, fake)
        assert http.fetch(PageRequest(server.url())).body == {"ok": True}
    assert len(server.seen("/token")) == 2 and len(server.seen("/data")) == 2
    assert fake.sleeps == []


def test_a_second_401_is_fatal():
    with StubServer(handler=ApiWithTokens({"tok1", "tok2"})) as server:
        with pytest.raises(FetchError, match=r"after 2 attempts: HTTP 401 \(token expired\)"):
            oauth_client(server, FakeTime()).fetch(PageRequest(server.url()))
    assert len(server.seen("/token")) == 2


def test_401_with_a_static_token_is_fatal():
    with StubServer([Reply(401, {"message": "bad token"})]) as server:
        http = HttpClient(source="s", throttle=Throttle(), auth=BearerTokenAuth("static"))
        with pytest.raises(FetchError, match="HTTP 401"):
            http.fetch(PageRequest(server.url()))
    assert server.count == 1


@pytest.mark.parametrize("body", ["not json", b"\xff\xfe\x00garbage"])
def test_invalid_json_is_not_retried(body):
    with StubServer([Reply(200, body)]) as server:
        http = client()
        with pytest.raises(FetchError, match="response is not valid JSON") as caught:
            _ = http.fetch(PageRequest(server.url())).body  # decoded where consumed
    assert caught.value.status == 200 and server.count == 1


def test_empty_204_is_none():
    with StubServer([Reply(204, b"")]) as server:
        assert client().fetch(PageRequest(server.url())).body is None


def test_query_api_key_stays_out_of_errors_and_logs(caplog):
    caplog.set_level(logging.DEBUG)   # urllib3 included: it logs request lines at DEBUG
    echoed = {"message": f"unknown key {KEY}"}      # some APIs quote the key they rejected
    with StubServer([Reply(500), Reply(404, echoed)]) as server:
        http = HttpClient(source="s", throttle=Throttle(max_retries=1, backoff=0), auth=ApiKeyQueryAuth("key", KEY))
        with pytest.raises(FetchError) as caught:
            http.fetch(PageRequest(server.url(), {"page": 1}))
        with pytest.raises(FetchError) as dropped:
            server.push(Reply(drop=True))
            HttpClient(source="s", throttle=Throttle(max_retries=0), auth=ApiKeyQueryAuth("key", KEY)) \
                .fetch(PageRequest(server.url()))
    assert server.seen()[0].query["key"] == [KEY]                 # it did reach the server
    texts = [str(caught.value), caught.value.url, str(dropped.value), caplog.text]
    assert "unknown key ***" in texts[0] and "retry 1/1" in caplog.text and '"GET /data?... HTTP/1.1"' in caplog.text
    for text in texts:
        assert "SECRET" not in text and "k3y" not in text


def test_credentials_are_not_sent_to_another_host():
    """A next link may point anywhere; the source's token is only for the source's own origin."""
    import requests as _requests

    from shared.config.models import BearerAuth
    from shared.extract.auth import build_auth

    with StubServer(default=Reply(200, {"ok": 1})) as server:
        session = _requests.Session()
        auth = build_auth(BearerAuth(type="bearer", token="s3cret-token"), session)
        own = HttpClient(source="s", throttle=Throttle(), auth=auth, session=session, auth_origin=server.url("/"))
        own.fetch(PageRequest(server.url("/a")))
        other = HttpClient(source="s", throttle=Throttle(), auth=auth, session=_requests.Session(),
                           auth_origin="https://api.example.com")
        other.fetch(PageRequest(server.url("/b")))
        assert [s.headers.get("Authorization") for s in server.seen()] == ["Bearer s3cret-token", None]
