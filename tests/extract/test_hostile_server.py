"""Hostile and broken servers (issue 12 §5, §6, §7): credentials stay with their origin, and every
answer is bounded in size, time and depth. Each case uses small settings, so none runs long or
holds much memory: the bounds are what is tested.

Servers are loopback stubs; two stubs on different ports are two origins. Rate-limit answers follow
the providers' documents: GitHub, https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
(403 or 429 with `retry-after`, or `x-ratelimit-remaining: 0` and `x-ratelimit-reset`, or a message
naming the secondary rate limit); Google, https://developers.google.com/drive/api/guides/handle-errors
(403 with reason `rateLimitExceeded` / `userRateLimitExceeded`).
"""
from __future__ import annotations

import gzip
import json
import logging
import socket
import socketserver
import threading
import time
import tracemalloc
import zlib
from datetime import UTC, datetime

import azure.functions as func
import pytest

from functions.runs import BadRequest, parse_start
from functions.schema_routes import read_object
from shared.chain.page_fetchers import ApiPages
from shared.config.models import Throttle
from shared.errors import FetchError, RateLimited
from shared.extract.http_client import HttpClient
from shared.extract.types import PageRequest
from shared.ledger import RunLedger
from shared.pipeline import run_models
from shared.storage import LocalBlobStore
from tests.helpers.chain import applied_target
from tests.helpers.flow import api_source, extract_all, project_for
from tests.helpers.http_stub import FakeTime, Reply, StubServer

SECRET = "s3cret-from-the-environment"
KEY = "api-key-value-1234"
TOKEN = "bearer-token-5678"
MODEL = {"path": "/data", "records": "items", "columns": {"id": {"type": "integer"}}}


def client(fake: FakeTime | None = None, **throttle) -> HttpClient:
    fake = fake or FakeTime()
    settings = {"max_retries": 2, "backoff": 0.1, "max_backoff": 4.0, "timeout": 5.0, **throttle}
    return HttpClient(source="hostile", throttle=Throttle(**settings), sleep=fake.sleep, clock=fake.clock)


# ---------------------------------------------------------------- §5 credentials stay with their origin
def credentials(seen) -> dict[str, str | None]:
    return {name: seen.headers.get(name) for name in ("Authorization", "X-Api-Key", "X-Secret", "X-Plain")}


NONE = {"Authorization": None, "X-Api-Key": None, "X-Secret": None, "X-Plain": "plain"}


def hostile_project(tmp_path, api_url: str, auth: dict, **source):
    """A source whose `X-Secret` header comes from ${VAR} and `X-Plain` is written in the manifest."""
    sources = {"src": api_source(api_url, {"m": MODEL}, auth=auth,
                                 headers={"X-Secret": "${HOSTILE_SECRET}", "X-Plain": "plain"}, **source)}
    return project_for(tmp_path, sources, env={"HOSTILE_SECRET": SECRET})


AUTHS = {
    "api_key header": ({"type": "api_key", "name": "X-Api-Key", "value": KEY}, {"X-Api-Key": KEY}),
    "bearer": ({"type": "bearer", "token": TOKEN}, {"Authorization": f"Bearer {TOKEN}"}),
}


@pytest.mark.parametrize("auth, sent", AUTHS.values(), ids=AUTHS.keys())
def test_a_redirect_to_another_origin_carries_no_credential(tmp_path, auth, sent):
    with StubServer(default=Reply(200, {"items": [{"id": 1}]})) as other, StubServer() as api:
        api.push(Reply(302, b"", headers={"Location": other.url("/moved")}))
        project = hostile_project(tmp_path, api.url(""), auth)
        records, _ = extract_all(project, "src.m")
    assert records == [{"id": 1}]
    assert credentials(api.seen()[0]) == {**NONE, **sent, "X-Secret": SECRET}
    assert credentials(other.seen()[0]) == NONE


def test_a_redirect_within_the_origin_keeps_them(tmp_path):
    auth, sent = AUTHS["bearer"]
    with StubServer() as api:
        api.push(Reply(301, b"", headers={"Location": "/elsewhere"}), Reply(200, {"items": []}))
        extract_all(hostile_project(tmp_path, api.url(""), auth), "src.m")
    assert [s.path for s in api.seen()] == ["/data", "/elsewhere"]
    assert credentials(api.seen()[1]) == {**NONE, **sent, "X-Secret": SECRET}


def test_a_redirect_chain_back_and_forth_is_checked_per_hop(tmp_path):
    """A -> B -> A: B gets nothing, the second visit to A gets everything again."""
    auth, sent = AUTHS["api_key header"]
    with StubServer() as other, StubServer() as api:
        api.push(Reply(302, b"", headers={"Location": other.url("/hop")}), Reply(200, {"items": [{"id": 2}]}))
        other.push(Reply(307, b"", headers={"Location": api.url("/back")}))
        records, _ = extract_all(hostile_project(tmp_path, api.url(""), auth), "src.m")
    assert records == [{"id": 2}]
    assert credentials(other.seen()[0]) == NONE
    assert credentials(api.seen()[1]) == {**NONE, **sent, "X-Secret": SECRET}


def test_a_cross_origin_next_link_carries_no_credential_in_both_modes(tmp_path):
    auth, sent = AUTHS["api_key header"]
    with StubServer(default=Reply(200, {"items": [{"id": 2}], "next": None})) as other, StubServer() as api:
        api.handler = lambda seen: Reply(200, {"items": [{"id": 1}], "next": other.url("/page2")})
        project = hostile_project(tmp_path, api.url(""), auth, pagination={"type": "next_link", "next_path": "next"})
        records, _ = extract_all(project, "src.m")                       # embedded
        [ref] = project.models(["src.m"])
        with ApiPages(project, ref) as pages:                              # the queue chain's Fetch
            at = pages.step.start()
            pages.fetch(at)
            pages.fetch(pages.step.resume(at.state()))                     # as the next invocation does
    assert records == [{"id": 1}, {"id": 2}]
    assert len(other.seen()) == 2 and all(credentials(s) == NONE for s in other.seen())
    assert all(credentials(s) == {**NONE, **sent, "X-Secret": SECRET} for s in api.seen())


def test_allowed_origins_lets_the_credentials_through(tmp_path):
    auth, sent = AUTHS["bearer"]
    with StubServer(default=Reply(200, {"items": []})) as other, StubServer() as api:
        api.push(Reply(302, b"", headers={"Location": other.url("/cdn")}))
        project = hostile_project(tmp_path, api.url(""), auth, allowed_origins=[f"http://127.0.0.1:{other.port}"])
        extract_all(project, "src.m")
    assert credentials(other.seen()[0]) == {**NONE, **sent, "X-Secret": SECRET}


def test_headers_from_variables_are_known_and_masked(tmp_path):
    with StubServer() as api:
        project = hostile_project(tmp_path, api.url(""), {"type": "none"})
    assert project.sources["src"].secret_headers == frozenset({"x-secret"})
    assert project.masker.mask(f"echo {SECRET}") == "echo ***"


# ---------------------------------------------------------------- §6 size
class RawServer:
    """A loopback server whose answers are written by `answer(sock)` byte by byte as the test
    wants (streamed, trickled); `sent` counts the bytes it managed to write."""

    def __init__(self, answer):
        self.sent = 0
        self.finished = threading.Event()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.recv(65536)   # the request: one GET, small
                try:
                    answer(outer, self.request)
                except OSError:
                    pass   # the client went away: the point of most of these tests
                finally:
                    outer.finished.set()

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def write(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)
        self.sent += len(data)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/data"


def peak_memory(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_2_gb_body_stops_at_max_response_mb():
    def answer(server, sock):
        server.write(sock, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n")
        piece = b" " * 65536
        while server.sent < 2147483648:
            server.write(sock, piece)

    with RawServer(answer) as server:
        def fetch():
            with pytest.raises(FetchError, match=r"response body over throttle.max_response_mb=2 \(after "
                                                 r"decompression\)"):
                client(max_response_mb=2).fetch(PageRequest(server.url()))
        peak = peak_memory(fetch)
        assert server.finished.wait(5)
    assert peak < 16 * 2 ** 20 and server.sent < 64 * 2 ** 20


def test_a_gzip_bomb_stops_at_max_response_mb():
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)   # gzip framing
    zeros = b"0" * 2 ** 20
    bomb = b"".join(compressor.compress(zeros) for _ in range(256)) + compressor.flush()   # 256 MiB inflated
    assert len(bomb) < 2 ** 20

    def answer(server, sock):
        server.write(sock, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(bomb) + bomb)

    with RawServer(answer) as server:
        def fetch():
            with pytest.raises(FetchError, match=r"over throttle.max_response_mb=4 \(after decompression\)") as caught:
                client(max_response_mb=4).fetch(PageRequest(server.url()))
            assert caught.value.attempts == 1   # a limit of ours, not retried
        peak = peak_memory(fetch)
    assert peak < 32 * 2 ** 20


def test_a_gzip_body_under_the_cap_is_read_whole():
    body = json.dumps({"items": list(range(1000))}).encode()
    with StubServer([Reply(200, gzip.compress(body), headers={"Content-Encoding": "gzip"})]) as server:
        assert client(max_response_mb=1).fetch(PageRequest(server.url())).body == json.loads(body)


# ---------------------------------------------------------------- §6 time
HTTP_DATE_9999 = "Fri, 31 Dec 9999 23:59:59 GMT"


@pytest.mark.parametrize("value, asked", [("1000000000", "1000000000s"), (HTTP_DATE_9999, "over a hundred years")])
def test_a_huge_retry_after_fails_saying_what_the_server_asked(value, asked):
    fake = FakeTime()
    with StubServer([Reply(429, headers={"Retry-After": value})]) as server:
        with pytest.raises(FetchError) as caught:
            client(fake).fetch(PageRequest(server.url()))
    assert f"the server asks to wait {asked} before retrying, more than throttle.max_backoff=4s" in str(caught.value)
    assert fake.sleeps == [] and server.count == 1


def test_a_huge_retry_after_fails_in_the_queue_chain_too():
    fake = FakeTime()
    with StubServer([Reply(503, headers={"Retry-After": HTTP_DATE_9999})]) as server:
        http = HttpClient(source="s", throttle=Throttle(max_backoff=60), on_rate_limit="raise",
                          sleep=fake.sleep, clock=fake.clock)
        with pytest.raises(FetchError, match="more than throttle.max_backoff=60s"):
            http.fetch(PageRequest(server.url()))


def test_a_long_wait_within_max_backoff_is_waited_and_logged(caplog):
    caplog.set_level(logging.INFO, logger="kspyder.http")
    fake = FakeTime()
    with StubServer([Reply(429, headers={"Retry-After": "30"}), Reply(200, {"ok": 1})]) as server:
        assert client(fake, max_backoff=60).fetch(PageRequest(server.url())).body == {"ok": 1}
    assert fake.sleeps == [30.0]
    [record] = [r for r in caplog.records if r.name == "kspyder.http"]
    assert record.levelno == logging.INFO and "retry 1/2 in 30.00s (as the server asked)" in record.getMessage()


def test_backoff_waits_never_exceed_max_backoff():
    fake = FakeTime()
    with StubServer([Reply(500)] * 6 + [Reply(200, {})]) as server:
        client(fake, max_retries=6, backoff=10, max_backoff=0.5).fetch(PageRequest(server.url()))
    assert len(fake.sleeps) == 6 and max(fake.sleeps) <= 0.5


def trickle(head: bytes, body: bytes, every: float, headers_too: bool):
    def answer(server, sock):
        data = head + body
        if not headers_too:
            server.write(sock, head)
            data = body
        for i in range(len(data)):
            server.write(sock, data[i:i + 1])
            time.sleep(every)
    return answer


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_timeout_is_a_deadline_for_the_whole_request(headers_too):
    """One byte every 0.05 s: each socket read is quick, the whole answer takes ~5 s; timeout 0.5 s."""
    body = json.dumps({"items": list(range(25))}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    with RawServer(trickle(head, body, 0.05, headers_too)) as server:
        with pytest.raises(FetchError, match=r"no complete answer within throttle.timeout=0.5s"):
            client(timeout=0.5, max_retries=0).fetch(PageRequest(server.url()))
        assert server.finished.wait(5)
    assert server.sent < len(head) + len(body)   # the client hung up before the answer was complete


def test_a_deadline_miss_is_retried_like_a_timeout():
    body = json.dumps({"items": [1]}).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    calls = []

    def answer(server, sock):
        calls.append(1)
        if len(calls) == 1:
            trickle(head, body, 0.05, False)(server, sock)
        else:
            server.write(sock, head + body)

    with RawServer(answer) as server:
        fake = FakeTime()
        http = client(fake, timeout=0.3, max_retries=1)
        assert http.fetch(PageRequest(server.url())).body == {"items": [1]}
    assert len(calls) == 2 and http.stats.retries == 1


# ---------------------------------------------------------------- §6 depth
DEEP = b"[" * 100_000 + b"]" * 100_000


def test_json_nested_100000_deep_is_a_clear_fetch_error():
    with StubServer([Reply(200, DEEP)]) as server:
        with pytest.raises(FetchError, match="nests arrays or objects too deeply"):
            _ = client().fetch(PageRequest(server.url())).body


def test_deep_json_fails_its_model_and_the_others_go_on(tmp_path):
    with StubServer(handler=lambda seen: Reply(200, DEEP if seen.path == "/deep" else {"items": [{"id": 1}]})) as api:
        models = {"deep": {**MODEL, "path": "/deep"}, "fine": MODEL}
        project = project_for(tmp_path, {"src": api_source(api.url(""), models)},
                              {"storage": {"root": str(tmp_path / "state")}})
        engine = applied_target(project, tmp_path / "target.db")
        ledger = RunLedger(LocalBlobStore(tmp_path / "ledger"))
        summary = run_models(project, project.models(), engine=engine, ledger=ledger)
    results = {r.model: r for r in summary.results}
    assert "nests arrays or objects too deeply" in results["src.deep"].error
    assert results["src.fine"].error is None and results["src.fine"].rows == 1
    record = ledger.get(summary.run_id)
    assert record.status == "failed" and not summary.ok


def test_a_recursion_error_while_shaping_fails_only_its_model(tmp_path, monkeypatch):
    """Data nested less than the parser's limit can still exhaust the stack further on."""
    import shared.extract.page_step as api_module
    real = api_module.records_at

    def records_at(body, path, url):
        if "/deep" in url:
            raise RecursionError("maximum recursion depth exceeded")
        return real(body, path, url)

    monkeypatch.setattr(api_module, "records_at", records_at)
    with StubServer(default=Reply(200, {"items": [{"id": 1}]})) as api:
        models = {"deep": {**MODEL, "path": "/deep"}, "fine": MODEL}
        project = project_for(tmp_path, {"src": api_source(api.url(""), models)},
                              {"storage": {"root": str(tmp_path / "state")}})
        engine = applied_target(project, tmp_path / "target.db")
        summary = run_models(project, project.models(), engine=engine, ledger=RunLedger(LocalBlobStore(tmp_path / "l")))
    results = {r.model: r for r in summary.results}
    assert results["src.deep"].error == "src.deep: a record nests too deeply to process (past Python's recursion limit)"
    assert results["src.fine"].error is None and results["src.fine"].rows == 1


def test_deep_json_bodies_of_the_http_routes_are_a_400():
    request = func.HttpRequest("POST", "http://localhost/api/runs", body=DEEP,
                               headers={"Content-Type": "application/json"})
    with pytest.raises(BadRequest, match="nests arrays or objects too deeply"):
        parse_start(request)
    with pytest.raises(BadRequest, match="nests arrays or objects too deeply"):
        read_object(request, ("sources",), '{"sources": []}')


# ---------------------------------------------------------------- §7 403 rate limits
def github_secondary() -> Reply:
    return Reply(403, {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                                  "again.",
                       "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"})


def github_primary(reset_in: int) -> Reply:
    reset = int(datetime.now(UTC).timestamp()) + reset_in
    return Reply(403, {"message": "API rate limit exceeded for 203.0.113.42."},
                 headers={"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})


def google(reason: str) -> Reply:
    return Reply(403, {"error": {"errors": [{"domain": "usageLimits", "reason": reason, "message": "Rate Limit "
                                                                                                   "Exceeded"}],
                                 "code": 403, "message": "Rate Limit Exceeded"}})


@pytest.mark.parametrize("limited", [github_secondary(), google("rateLimitExceeded"), google("userRateLimitExceeded"),
                                     Reply(403, headers={"Retry-After": "2"})],
                         ids=["github secondary", "google rateLimitExceeded", "google userRateLimitExceeded",
                              "retry-after"])
def test_a_403_rate_limit_is_retried(limited):
    fake = FakeTime()
    with StubServer([limited, Reply(200, {"ok": 1})]) as server:
        http = client(fake)
        assert http.fetch(PageRequest(server.url())).body == {"ok": 1}
    assert server.count == 2 and http.stats.throttled == 1 and len(fake.sleeps) == 1


def test_github_primary_limit_waits_until_the_reset():
    fake = FakeTime()
    with StubServer([github_primary(reset_in=3), Reply(200, {"ok": 1})]) as server:
        client(fake, max_backoff=10).fetch(PageRequest(server.url()))
    assert len(fake.sleeps) == 1 and 1 <= fake.sleeps[0] <= 3


def test_a_403_rate_limit_is_rescheduled_by_the_queue_chain():
    with StubServer([google("rateLimitExceeded")]) as server:
        http = HttpClient(source="s", throttle=Throttle(), on_rate_limit="raise")
        with pytest.raises(RateLimited):
            http.fetch(PageRequest(server.url()))


def test_a_plain_403_is_still_fatal():
    with StubServer([Reply(403, {"message": "Must have admin rights to Repository."}), Reply(200, {})]) as server:
        with pytest.raises(FetchError, match="HTTP 403"):
            client().fetch(PageRequest(server.url()))
    assert server.count == 1
