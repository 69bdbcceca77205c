"""The sample API keeps its promises: shapes, complete paging, faults, limits, stats and auth.

Flow tests elsewhere trust these behaviours, so each is pinned here over real HTTP on loopback,
with the pure pieces (data, handlers, token bucket) checked without sockets.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

import pytest
import requests

from samples.sample_api import ApiConfig, SampleApi, data, handlers
from samples.sample_api.server import ApiState, TokenBucket
from tests.helpers.paths import ROOT

# Odd sizes so every walk ends on a short last page.
COUNTS = {"customers": 237, "products": 103, "orders": 211, "events": 157, "tickets": 61}


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(**COUNTS)) as running:
        yield running


@pytest.fixture
def session(api: SampleApi):
    api.reset()
    with requests.Session() as s:
        yield s


def get(session: requests.Session, api: SampleApi, path: str, **params: object) -> requests.Response:
    return session.get(api.base_url + path, params=params, timeout=10)


# ---------------------------------------------------------------- data

def test_data_is_deterministic_and_seeded() -> None:
    assert data.customer(7) == data.customer(7)
    assert data.customer(7, seed=1) != data.customer(7, seed=2)
    assert data.order(3) == data.order(3) and data.event(3) == data.event(3)


def _iban_ok(value: str) -> bool:
    rearranged = value[4:] + value[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _luhn_ok(number: str) -> bool:
    total = 0
    for pos, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if pos % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def test_customer_fields_look_real() -> None:
    people = [data.customer(i) for i in range(1, 601)]
    assert all(_iban_ok(p["iban"]) and p["iban"][:2] in ("GB", "DE", "FR", "NL") for p in people)
    assert all(len(p["card_number"]) == 16 and _luhn_ok(p["card_number"]) for p in people)
    assert all(datetime.fromisoformat(p["created"]).tzinfo is not None for p in people)
    assert all(re.fullmatch(r"\d+\.\d{2}", p["balance"]) and len(p["tags"]) <= 3 for p in people)
    assert any(p["phone"].startswith("+") for p in people) and any(p["phone"].startswith("(") for p in people)
    assert any(":" in p["last_ip"] for p in people) and any("." in p["last_ip"] for p in people)
    assert 0.72 < sum(p["status"] == "active" for p in people) / len(people) < 0.88
    assert set(people[0]["address"]) == {"street", "city", "postcode", "country"}


def test_notes_plant_pii_in_a_third_and_lookalikes_everywhere() -> None:
    people = [data.customer(i) for i in range(1, 601)]
    planted = [p for p in people if p["email"] in p["notes"] or p["phone"] in p["notes"] or p["iban"] in p["notes"]]
    assert 0.25 < len(planted) / len(people) < 0.42
    for p in people:
        assert re.search(r"ORD-\d{4}-\d{6}", p["notes"]) and re.search(r"\d{4}-\d{2}-\d{2}", p["notes"])
        assert re.search(r"v\d+\.\d+\.\d+", p["notes"]) and re.search(r"\d{1,3},\d{3}\.\d{2}", p["notes"])


# ---------------------------------------------------------------- pure handlers

def route(path: str, query: str = "", config: ApiConfig | None = None) -> handlers.Response:
    return handlers.route("GET", path, query, config or ApiConfig(**COUNTS), "example.test:80")


def test_handlers_answer_without_a_socket() -> None:
    response = route("/v1/customers", "page=2&per_page=10")
    body = json.loads(response.body)
    assert response.status == 200 and ("Content-Type", "application/json") in response.headers
    assert [c["id"] for c in body["data"]] == list(range(11, 21))
    assert body["meta"] == {"page": 2, "per_page": 10, "total_pages": 24, "total": 237}
    assert json.loads(route("/v1/customers", "per_page=5000").body)["meta"]["per_page"] == handlers.MAX_PAGE_SIZE


@pytest.mark.parametrize("path, query", [
    ("/v1/customers", "page=0"), ("/v1/customers", "per_page=abc"), ("/v1/customers", "status=gone"),
    ("/v1/orders", "cursor=not-a-cursor"), ("/v1/products", "offset=-1"), ("/v1/status/abc", ""),
])
def test_bad_parameters_are_400(path: str, query: str) -> None:
    response = route(path, query)
    assert response.status == 400 and "error" in json.loads(response.body)


def test_unknown_path_and_method() -> None:
    assert route("/v1/nothing").status == 404
    response = handlers.route("POST", "/v1/customers", "", ApiConfig(), "h")
    assert response.status == 405 and ("Allow", "GET, HEAD") in response.headers


def test_cursor_round_trip() -> None:
    assert handlers.decode_cursor(handlers.encode_cursor(1234)) == 1234


# ---------------------------------------------------------------- paging over HTTP, every record once

def test_customers_page_number(session: requests.Session, api: SampleApi) -> None:
    seen, page = [], 1
    while True:
        body = get(session, api, "/v1/customers", page=page, per_page=50).json()
        seen += [c["id"] for c in body["data"]]
        if page >= body["meta"]["total_pages"]:
            break
        page += 1
    assert seen == list(range(1, 238)) and body["meta"]["total"] == 237


def test_customers_status_filter(session: requests.Session, api: SampleApi) -> None:
    body = get(session, api, "/v1/customers", status="inactive", per_page=1000).json()
    expected = [i for i in range(1, 238) if data.customer_status(i) == "inactive"]
    assert [c["id"] for c in body["data"]] == expected and body["meta"]["total"] == len(expected)
    assert all(c["status"] == "inactive" for c in body["data"])


def test_customers_plain_stops_on_short_page(session: requests.Session, api: SampleApi) -> None:
    seen, page = [], 1
    while True:
        body = get(session, api, "/v1/customers_plain", page=page, per_page=40).json()
        assert set(body) == {"data"}
        seen += [c["id"] for c in body["data"]]
        if len(body["data"]) < 40:
            break
        page += 1
    assert seen == list(range(1, 238))


def test_products_offset(session: requests.Session, api: SampleApi) -> None:
    seen, offset = [], 0
    while True:
        body = get(session, api, "/v1/products", offset=offset, limit=25).json()
        assert body["total"] == 103
        if not body["items"]:
            break
        seen += [p["sku"] for p in body["items"]]
        offset += len(body["items"])
    assert seen == [f"SKU-{i:05d}" for i in range(1, 104)]
    assert isinstance(body["total"], int) and {"price", "category", "stock", "updated_at"} <= set(data.product(1))


def test_orders_cursor(session: requests.Session, api: SampleApi) -> None:
    seen, cursor = [], None
    while True:
        body = get(session, api, "/v1/orders", limit=50, cursor=cursor).json()
        seen += [o["order_id"] for o in body["orders"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert seen == [f"ORD-{i:06d}" for i in range(1, 212)]


def test_events_absolute_next_link(session: requests.Session, api: SampleApi) -> None:
    seen, url = [], api.base_url + "/v1/events?top=40"
    while url:
        assert url.startswith(api.base_url)  # built from the Host header
        body = session.get(url, timeout=10).json()
        seen += [e["event_id"] for e in body["value"]]
        url = body.get("@odata.nextLink")
    assert seen == list(range(1, 158))
    assert "actor_email" in body["value"][0]["payload"] and isinstance(body["value"][0]["payload"]["detail"], dict)


def test_events_relative_links(session: requests.Session, api: SampleApi) -> None:
    seen, url = [], "/v1/events_rel?limit=30"
    while url:
        body = session.get(urljoin(api.base_url, url), timeout=10).json()
        seen += [e["event_id"] for e in body["results"]]
        url = body["links"]["next"]
        assert url is None or url.startswith("/v1/events_rel?")
    assert seen == list(range(1, 158))


def test_tickets_link_header(session: requests.Session, api: SampleApi) -> None:
    seen, url = [], api.base_url + "/v1/tickets?per_page=20"
    while url:
        response = session.get(url, timeout=10)
        assert isinstance(response.json(), list)
        header = response.headers["Link"]
        if 'rel="next"' in header:  # `last` first, so a parser taking the first link is caught
            assert header.index('rel="last"') < header.index('rel="next"')
        seen += [t["ticket_id"] for t in response.json()]
        url = response.links.get("next", {}).get("url")
    assert seen == list(range(1, 62)) and 'rel="next"' not in header


def test_countries_and_empty(session: requests.Session, api: SampleApi) -> None:
    countries = get(session, api, "/v1/countries").json()
    assert isinstance(countries, list) and len(countries) == 20 and set(countries[0]) == {"code", "name"}
    assert get(session, api, "/v1/empty", page=1).json() == {
        "data": [], "meta": {"page": 1, "per_page": 25, "total_pages": 0, "total": 0}}


# ---------------------------------------------------------------- faults

def test_loops(session: requests.Session, api: SampleApi) -> None:
    body = get(session, api, "/v1/loop/next_link").json()
    assert body["next"] == "/v1/loop/next_link" and body["data"]
    again = get(session, api, "/v1/loop/next_link", limit=3).json()
    assert again["next"] == "/v1/loop/next_link?limit=3" and len(again["data"]) == 3
    first, again = get(session, api, "/v1/loop/cursor").json(), get(session, api, "/v1/loop/cursor", cursor="x").json()
    assert first == again and first["next_cursor"] and first["data"]
    one, two = get(session, api, "/v1/loop/page", page=1, per_page=10).json(), \
        get(session, api, "/v1/loop/page", page=2, per_page=10).json()
    assert one == two and set(one) == {"data"} and len(one["data"]) == 10


def test_malformed_and_missing_records(session: requests.Session, api: SampleApi) -> None:
    response = get(session, api, "/v1/malformed")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert get(session, api, "/v1/missing_records").json() == {"items_typo": []}


def test_flaky_counts_per_query_string(session: requests.Session, api: SampleApi) -> None:
    codes = [get(session, api, "/v1/flaky", fail=2, code=502, page=1).status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    assert get(session, api, "/v1/flaky", fail=2, code=502, page=2).status_code == 502  # its own counter
    assert [get(session, api, "/v1/flaky", page=9).status_code for _ in range(2)] == [503, 200]  # default K=1
    assert get(session, api, "/v1/flaky", code=418).status_code == 400
    api.reset()
    assert get(session, api, "/v1/flaky", fail=2, code=502, page=1).status_code == 502


def test_drop_hangs_up_then_recovers(session: requests.Session, api: SampleApi) -> None:
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            get(session, api, "/v1/drop", fail=2, per_page=5)
    assert [c["id"] for c in get(session, api, "/v1/drop", fail=2, per_page=5).json()["data"]] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("code", [400, 403, 404, 500])
def test_forced_status(session: requests.Session, api: SampleApi, code: int) -> None:
    response = get(session, api, f"/v1/status/{code}")
    assert response.status_code == code and response.json()["error"]["status"] == code


def test_slow_sleeps(session: requests.Session, api: SampleApi) -> None:
    started = time.perf_counter()
    assert get(session, api, "/v1/slow", ms=150).json()["data"]
    assert time.perf_counter() - started >= 0.15


# ---------------------------------------------------------------- protocol

def test_keep_alive_head_and_lengths(api: SampleApi) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        for path in ("/v1/countries", "/v1/status/404", "/v1/customers?per_page=3"):
            connection.request("GET", path)
            response = connection.getresponse()
            assert int(response.getheader("Content-Length")) == len(response.read())
        connection.request("HEAD", "/v1/countries")
        response = connection.getresponse()
        assert int(response.getheader("Content-Length")) > 0 and response.read() == b""
    finally:
        connection.close()


def test_index_and_wrong_methods(session: requests.Session, api: SampleApi) -> None:
    assert "/v1/customers" in get(session, api, "/").json()["endpoints"]
    assert session.delete(api.base_url + "/v1/customers", timeout=5).status_code == 405
    assert session.get(api.base_url + "/oauth/token", timeout=5).status_code == 405
    assert session.get(api.base_url + "/_reset", timeout=5).status_code == 405


# ---------------------------------------------------------------- rate limit, stats, latency

def test_token_bucket_with_a_fake_clock() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: now[0])
    assert [bucket.take(), bucket.take()] == [0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take() == 0.0


@pytest.mark.parametrize("fmt", ["seconds", "http-date"])
def test_rate_limit_answers_429_with_retry_after(fmt: str) -> None:
    with SampleApi(ApiConfig(rate=0.5, burst=3, retry_after_format=fmt)) as api, requests.Session() as s:
        codes = [s.get(api.base_url + "/v1/countries", timeout=5).status_code for _ in range(3)]
        limited = s.get(api.base_url + "/v1/countries", timeout=5)
        assert codes == [200, 200, 200] and limited.status_code == 429
        if fmt == "seconds":
            assert limited.headers["Retry-After"] == "2"  # ceil(1 token / 0.5 per s)
        else:
            delay = parsedate_to_datetime(limited.headers["Retry-After"]).timestamp() - time.time()
            assert 1 <= delay <= 4
        assert all(s.get(api.base_url + "/_stats", timeout=5).status_code == 200 for _ in range(5))
        stats = api.stats()
        assert stats["throttled"] == 1 and stats["requests"]["by_path"] == {"/v1/countries": 4}


def test_in_flight_is_exact_under_concurrency_and_latency_applies() -> None:
    clients = 6
    with SampleApi(ApiConfig(latency_ms=300)) as api:
        barrier, elapsed = threading.Barrier(clients), []

        def call() -> None:
            with requests.Session() as s:
                barrier.wait()
                started = time.perf_counter()
                assert s.get(api.base_url + "/v1/countries", timeout=10).status_code == 200
                elapsed.append(time.perf_counter() - started)

        threads = [threading.Thread(target=call) for _ in range(clients)]
        for thread in threads:
            thread.start()
        deadline, peak = time.monotonic() + 2, 0
        while time.monotonic() < deadline and peak < clients:
            peak = max(peak, requests.get(api.base_url + "/_stats", timeout=5).json()["in_flight"])
        for thread in threads:
            thread.join()
        stats = api.stats()
        assert peak == clients and stats["max_in_flight"] == clients and stats["in_flight"] == 0
        assert stats["requests"]["total"] == clients  # /_stats itself is never counted
        assert len(elapsed) == clients and min(elapsed) >= 0.3
        assert requests.post(api.base_url + "/_reset", timeout=5).json() == {"reset": True}
        assert api.stats() == {"requests": {"total": 0, "by_path": {}}, "throttled": 0, "in_flight": 0,
                               "max_in_flight": 0}


# ---------------------------------------------------------------- auth

def test_bearer_token_and_oauth() -> None:
    with SampleApi(ApiConfig(token="s3cret")) as api, requests.Session() as s:
        url = api.base_url + "/v1/countries"
        assert s.get(url, timeout=5).status_code == 401
        assert s.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        assert s.get(url, headers={"Authorization": "Bearer s3cret"}, timeout=5).status_code == 200
        grant = s.post(api.base_url + "/oauth/token", timeout=5,
                       data={"grant_type": "client_credentials", "client_id": "app", "client_secret": "pw"}).json()
        assert grant["token_type"] == "Bearer" and grant["expires_in"] > 0
        assert s.get(url, headers={"Authorization": f"Bearer {grant['access_token']}"}, timeout=5).status_code == 200
        assert s.post(api.base_url + "/oauth/token", data={"grant_type": "password"}, timeout=5).status_code == 400
        assert s.get(api.base_url + "/_stats", timeout=5).status_code == 200  # control endpoints need no auth


def test_oauth_checks_configured_client_and_basic_auth() -> None:
    config = ApiConfig(token="t", client_id="app", client_secret="pw")
    with SampleApi(config) as api, requests.Session() as s:
        token_url = api.base_url + "/oauth/token"
        bad = s.post(token_url, data={"grant_type": "client_credentials", "client_id": "app", "client_secret": "no"})
        assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}
        good = s.post(token_url, data={"grant_type": "client_credentials"}, auth=("app", "pw"), timeout=5)
        assert good.status_code == 200


def test_issued_tokens_expire() -> None:
    now = [100.0]
    state = ApiState(clock=lambda: now[0])
    token = state.issue_token(ttl_s=60)
    assert state.token_valid(token) and not state.token_valid("other")
    now[0] += 61
    assert not state.token_valid(token)


def test_api_key_header_or_query() -> None:
    with SampleApi(ApiConfig(api_key="k1")) as api, requests.Session() as s:
        url = api.base_url + "/v1/countries"
        assert s.get(url, timeout=5).status_code == 401
        assert s.get(url, headers={"X-API-Key": "k1"}, timeout=5).status_code == 200
        assert s.get(url, params={"api_key": "k1"}, timeout=5).status_code == 200
        assert s.get(url, params={"api_key": "k2"}, timeout=5).status_code == 401
        events = s.get(api.base_url + "/v1/events", params={"api_key": "k1", "top": 5}, timeout=5).json()
        assert "api_key=k1" in events["@odata.nextLink"]  # following the link keeps working


# ---------------------------------------------------------------- lifecycle and CLI

def test_lifecycle_frees_the_port() -> None:
    api = SampleApi()
    with pytest.raises(RuntimeError):
        api.stats()
    with api:
        port = api.port
        assert api.base_url == f"http://127.0.0.1:{port}"
        requests.get(api.base_url + "/v1/countries", timeout=5)  # leaves an idle keep-alive connection
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v1/countries", timeout=2)


def test_config_rejects_nonsense() -> None:
    for bad in ({"rate": 0}, {"burst": 0}, {"customers": -1}, {"retry_after_format": "minutes"}):
        with pytest.raises(ValueError):
            ApiConfig(**bad)


def test_cli_serves_until_sigterm() -> None:
    process = subprocess.Popen([sys.executable, "-m", "samples.sample_api", "--port", "0", "--customers", "7"],
                               cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE,
                               text=True)
    try:
        line = process.stderr.readline().strip()
        match = re.fullmatch(r"sample API listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        assert requests.get(match.group(1) + "/v1/customers", timeout=5).json()["meta"]["total"] == 7
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.stderr.close()
