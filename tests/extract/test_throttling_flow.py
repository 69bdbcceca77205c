"""Throttling against a server that enforces R requests/s and answers 429 + Retry-After beyond it.

Bounds we state and hold (docs/manifest-reference.md#throttle):
- configured at the server's rate: every record exactly once, at most 2 answers of 429 per 30 pages
  (measured: 1). Jitter between the two clocks causes the first; each 429 pauses the whole source
  for Retry-After and takes 10% off the client's rate, so it does not recur;
- configured with no rate at all (a misconfiguration, 4 in flight): every record exactly once, and
  fewer than two 429s per page (measured: about one), since every 429 pauses all threads.
"""
from __future__ import annotations

import pytest

from samples.sample_api.server import ApiConfig, SampleApi
from tests.helpers.flow import ID, api_source, extract_all, project_for

RATE = 20.0
CUSTOMERS = 300
PER_PAGE = 10  # 30 pages


@pytest.fixture()
def limited_api():
    with SampleApi(ApiConfig(customers=CUSTOMERS, rate=RATE, burst=2, latency_ms=5)) as server:
        yield server


def customers(tmp_path, api, throttle):
    model = {"path": "/v1/customers", "records": "data", "params": {"per_page": PER_PAGE},
             "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"}, "columns": ID}
    project = project_for(tmp_path, {"s": api_source(api.base_url, {"m": model}, throttle=throttle)})
    return extract_all(project, "s.m")


def test_client_at_the_server_rate_gets_everything_with_few_429s(tmp_path, limited_api):
    records, stats = customers(tmp_path, limited_api, {"rate": RATE, "burst": 2, "concurrency": 4, "backoff": 0.05})
    assert sorted(r["id"] for r in records) == list(range(1, CUSTOMERS + 1))
    server = limited_api.stats()
    assert server["max_in_flight"] <= 4
    assert stats.throttled == server["throttled"]
    assert server["throttled"] <= 2 * (CUSTOMERS // PER_PAGE) // 30


def test_client_far_above_the_server_rate_still_completes(tmp_path, limited_api):
    records, stats = customers(tmp_path, limited_api, {"concurrency": 4, "backoff": 0.05, "max_retries": 20})
    assert sorted(r["id"] for r in records) == list(range(1, CUSTOMERS + 1))
    server = limited_api.stats()
    assert 0 < server["throttled"] < 2 * CUSTOMERS // PER_PAGE
    assert server["max_in_flight"] <= 4


@pytest.mark.parametrize("concurrency", [1, 3, 6])
def test_in_flight_requests_never_exceed_concurrency(tmp_path, concurrency):
    with SampleApi(ApiConfig(customers=CUSTOMERS, latency_ms=20)) as api:
        records, _ = customers(tmp_path, api, {"concurrency": concurrency})
        assert len(records) == CUSTOMERS
        assert api.stats()["max_in_flight"] <= concurrency
        if concurrency > 1:
            assert api.stats()["max_in_flight"] > 1  # parallel pages really run in parallel
