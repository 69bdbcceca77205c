"""The API connector end to end against the real sample API on loopback: every pagination type,
the edge cases that break naive loops, retries, and fatal errors."""
from __future__ import annotations

import pytest

from samples.sample_api.server import ApiConfig, SampleApi
from shared.errors import FetchError, PaginationError, RecordPathError
from tests.helpers.flow import ID, api_source, extract_all, project_for

N = 237  # not a multiple of any page size used below: every run ends on a short page


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=N, products=N, orders=N, events=N, tickets=N)) as server:
        yield server


def run(tmp_path, api, model: dict, source_extra: dict | None = None, limit=None):
    project = project_for(tmp_path, {"s": api_source(api.base_url, {"m": model}, **(source_extra or {}))})
    return extract_all(project, "s.m", limit)


PAGINATIONS = {
    "page_number_total": ({"path": "/v1/customers", "records": "data", "params": {"per_page": 20},
                           "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages",
                                          "total_path": "meta.total"},
                           "columns": ID}, "id"),
    "page_number_short_page": ({"path": "/v1/customers_plain", "records": "data",
                                "pagination": {"type": "page_number", "size_param": "per_page", "size": 25},
                                "columns": ID}, "id"),
    "offset": ({"path": "/v1/products", "records": "items",
                "pagination": {"type": "offset", "limit": 30, "total_path": "total"},
                "columns": {"sku": {"type": "string"}}}, "sku"),
    "cursor": ({"path": "/v1/orders", "records": "orders", "params": {"limit": 40},
                "pagination": {"type": "cursor", "cursor_path": "next_cursor"},
                "columns": {"order_id": {"type": "string"}}}, "order_id"),
    "next_link_absolute": ({"path": "/v1/events", "records": "value", "params": {"top": 50},
                            "pagination": {"type": "next_link", "next_path": "@odata.nextLink"},
                            "columns": {"event_id": {"type": "integer"}}}, "event_id"),
    "next_link_relative": ({"path": "/v1/events_rel", "records": "results", "params": {"limit": 50},
                            "pagination": {"type": "next_link", "next_path": "links.next"},
                            "columns": {"event_id": {"type": "integer"}}}, "event_id"),
    "link_header": ({"path": "/v1/tickets", "params": {"per_page": 30}, "pagination": {"type": "link_header"},
                     "columns": {"ticket_id": {"type": "integer"}}}, "ticket_id"),
}


@pytest.mark.parametrize("name", PAGINATIONS)
@pytest.mark.parametrize("concurrency", [1, 4])
def test_every_pagination_type_returns_every_record_once(tmp_path, api, name, concurrency):
    model, key = PAGINATIONS[name]
    records, stats = run(tmp_path, api, model, {"throttle": {"concurrency": concurrency}})
    keys = [r[key] for r in records]
    assert len(keys) == N and len(set(keys)) == N
    assert stats.records == N and stats.warnings == []


def test_none_pagination_reads_a_bare_list(tmp_path, api):
    records, stats = run(tmp_path, api, {"path": "/v1/countries", "columns": {"code": {"type": "string"}}})
    assert len(records) >= 10 and stats.pages == 1


def test_records_come_in_page_order_with_parallel_pages(tmp_path, api):
    model, _ = PAGINATIONS["page_number_total"]
    records, _ = run(tmp_path, api, model, {"throttle": {"concurrency": 8}})
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)


def test_empty_first_page(tmp_path, api):
    records, stats = run(tmp_path, api, {"path": "/v1/empty", "records": "data",
                                         "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"},
                                         "columns": ID})
    assert records == [] and stats.pages == 1


@pytest.mark.parametrize("model, message", [
    ({"path": "/v1/loop/next_link", "records": "data", "pagination": {"type": "next_link", "next_path": "next"}},
     "repeat"),
    ({"path": "/v1/loop/cursor", "records": "data", "pagination": {"type": "cursor", "cursor_path": "next_cursor"}},
     "repeat"),
    ({"path": "/v1/loop/page", "records": "data", "pagination": {"type": "page_number"}}, "repeats page"),
])
def test_loops_are_errors_not_endless_runs(tmp_path, api, model, message):
    with pytest.raises(PaginationError, match=message):
        run(tmp_path, api, {**model, "columns": ID})


def test_malformed_json_is_a_clear_error(tmp_path, api):
    with pytest.raises(FetchError, match=r"/v1/malformed.*not valid JSON"):
        run(tmp_path, api, {"path": "/v1/malformed", "columns": ID})


def test_missing_record_path_names_url_not_the_body_keys(tmp_path, api):
    with pytest.raises(RecordPathError, match=r"record path 'items' not found in the response from "
                                              r".*/v1/missing_records "
                                              r"\(the body is an object of 1 key\(s\)\)") as caught:
        run(tmp_path, api, {"path": "/v1/missing_records", "records": "items", "columns": ID})
    assert "items_typo" not in str(caught.value)   # top-level keys are data in some APIs


def test_transient_5xx_and_dropped_connections_are_retried(tmp_path, api):
    fast = {"throttle": {"backoff": 0.01, "max_retries": 4}}
    for path in ("/v1/flaky", "/v1/drop"):
        records, stats = run(tmp_path, api, {"path": path, "params": {"fail": 2, "per_page": 50}, "records": "data",
                                             "pagination": {"type": "page_number",
                                                            "total_pages_path": "meta.total_pages"},
                                             "columns": ID}, fast)
        assert len({r["id"] for r in records}) == N
        assert stats.retries >= 2 * 5  # two failures for each of the five pages


def test_retries_exhausted_names_url_status_and_attempts(tmp_path, api):
    with pytest.raises(FetchError) as info:
        run(tmp_path, api, {"path": "/v1/flaky", "params": {"fail": 50, "code": 502}, "records": "data", "columns": ID},
            {"throttle": {"backoff": 0.001, "max_retries": 2}})
    assert "/v1/flaky" in str(info.value) and "502" in str(info.value) and "3 attempts" in str(info.value)


@pytest.mark.parametrize("code", [400, 403, 404])
def test_permanent_4xx_fails_at_once(tmp_path, api, code):
    api.reset()
    with pytest.raises(FetchError, match=rf"/v1/status/{code} failed: HTTP {code}"):
        run(tmp_path, api, {"path": f"/v1/status/{code}", "columns": ID})
    assert api.stats()["requests"]["total"] == 1


def test_limit_stops_early(tmp_path, api):
    model, _ = PAGINATIONS["cursor"]
    records, stats = run(tmp_path, api, model, limit=55)
    assert len(records) == 55 and stats.truncated_by == "limit"


def test_max_pages_is_a_hard_cap_with_a_warning(tmp_path, api):
    model, _ = PAGINATIONS["cursor"]
    model = {**model, "pagination": {**model["pagination"], "max_pages": 2}}
    records, stats = run(tmp_path, api, model)
    assert len(records) == 80 and stats.truncated_by == "max_pages"
    assert any("max_pages=2" in w for w in stats.warnings)


def test_pii_is_stripped_before_anything_leaves_the_extractor(tmp_path, api):
    raw = []
    import requests
    for page in range(1, 4):
        raw += requests.get(f"{api.base_url}/v1/customers", params={"page": page, "per_page": 100},
                            timeout=30).json()["data"]
    records, _ = run(tmp_path, api, {
        "path": "/v1/customers", "records": "data", "params": {"per_page": 100}, "pii_scan": "redact",
        "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"},
        "columns": {"id": {"type": "integer"}, "name": {"path": "full_name", "type": "string", "pii": "hash"},
                    "email": {"type": "string", "pii": "drop"}, "notes": {"type": "text"},
                    "phone": {"type": "string", "pii": {"rule": "mask", "keep": 2}}}})
    text = repr(records)
    for customer in raw:
        assert customer["email"] not in text
        assert customer["full_name"] not in text
        assert customer["phone"] not in text
        assert customer["iban"].replace(" ", "") not in text.replace(" ", "")
    assert all("email" not in r for r in records)
    assert all(len(r["name"]) == 64 for r in records)
