"""One page engine for both modes (issue 13 §4): the same manifests run embedded (`run_models`, as
`main.py run`) and through the queue chain (pumped in process, `tests/helpers/chain.py` Harness) must
land the same tables, report the same warnings and fail with the same errors.

Every pagination type, SQL keyset and keyless, a stated total never reached (failing and warning),
an API looping on its cursor and one ignoring its paging parameters, `max_pages` caps on a fanned-out
and on a sequential pagination, and a 429. A failed model's table is not compared: the embedded run
discards the batch in flight, the chain has loaded the pages before the failure; its error is.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from samples.sample_db import create_sample_db
from shared.config.project import Project
from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.modes import chained, embedded

ITEMS = 45
SIZE = 10
SQL_ORDERS = 40


def item(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"item {i}"}


def span(start: int, count: int = SIZE) -> list[dict[str, Any]]:
    return [item(i) for i in range(start, min(start + count, ITEMS))]


class PagingApi:
    """Every paging style over the same 45 items, plus the misbehaving ones. The first request for
    `/limited` page 2 of each round is answered 429 (`reset` starts a round)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.limited = False

    def reset(self) -> None:
        with self.lock:
            self.limited = False

    def __call__(self, seen: Seen) -> Reply:
        query = {k: v[0] for k, v in seen.query.items()}
        page = int(query.get("page", 1))
        pages = -(-ITEMS // SIZE)
        path = seen.path
        if path in ("/numbered", "/limited"):
            if path == "/limited" and page == 2:
                with self.lock:
                    first, self.limited = not self.limited, True
                if first:
                    return Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "0"})
            return Reply(body={"data": span((page - 1) * SIZE), "meta": {"total_pages": pages}})
        if path in ("/offset", "/short"):
            start = int(query.get("offset", 0))
            total = ITEMS + 15 if path == "/short" else ITEMS
            return Reply(body={"data": span(start, int(query.get("limit", SIZE))), "total": total})
        if path == "/cursor":
            start = int(query.get("cursor", 0))
            more = start + SIZE < ITEMS
            return Reply(body={"data": span(start), "next": str(start + SIZE) if more else None})
        if path == "/next":
            start = int(query.get("start", 0))
            more = start + SIZE < ITEMS
            return Reply(body={"data": span(start), "next": f"/next?start={start + SIZE}" if more else None})
        if path == "/links":
            more = page < pages
            headers = {"Link": f'</links?page={page + 1}>; rel="next"'} if more else {}
            return Reply(body=span((page - 1) * SIZE), headers=headers)
        if path == "/single":
            return Reply(body={"data": span(0, ITEMS)})
        if path == "/cursor-loop":
            return Reply(body={"data": span(int(query.get("cursor", 0))), "next": "7"})
        if path == "/stuck":   # ignores `page`: page 1 forever
            return Reply(body={"data": span(0)})
        return Reply(status=404, body={"error": "no such path"})


COLUMNS = {"id": {"type": "integer"}, "name": {"type": "string"}}
NUMBERED = {"type": "page_number", "size_param": "per_page", "size": SIZE, "total_pages_path": "meta.total_pages"}
API_MODELS: dict[str, dict[str, Any]] = {
    "numbered": {"path": "/numbered", "records": "data", "pagination": NUMBERED},
    "offset": {"path": "/offset", "records": "data",
               "pagination": {"type": "offset", "limit": SIZE, "total_path": "total"}},
    "cursor": {"path": "/cursor", "records": "data", "pagination": {"type": "cursor", "cursor_path": "next"}},
    "next_link": {"path": "/next", "records": "data", "pagination": {"type": "next_link", "next_path": "next"}},
    "link_header": {"path": "/links", "pagination": {"type": "link_header"}},
    "single": {"path": "/single", "records": "data"},
    "keyless": {"path": "/cursor", "records": "data", "keyless": True,
                "pagination": {"type": "cursor", "cursor_path": "next"}},
    "limited": {"path": "/limited", "records": "data", "pagination": NUMBERED},
    "capped_fanned": {"path": "/numbered", "records": "data", "pagination": {**NUMBERED, "max_pages": 2}},
    "capped_chained": {"path": "/cursor", "records": "data",
                       "pagination": {"type": "cursor", "cursor_path": "next", "max_pages": 3}},
    "short_warn": {"path": "/short", "records": "data",
                   "pagination": {"type": "offset", "limit": SIZE, "total_path": "total", "on_shortfall": "warn"}},
    "short_fail": {"path": "/short", "records": "data",
                   "pagination": {"type": "offset", "limit": SIZE, "total_path": "total"}},
    "cursor_loop": {"path": "/cursor-loop", "records": "data",
                    "pagination": {"type": "cursor", "cursor_path": "next"}},
    "stuck": {"path": "/stuck", "records": "data", "params": {"per_page": SIZE},
              "pagination": {"type": "page_number"}},
}
SQL_MODELS: dict[str, dict[str, Any]] = {
    "orders": {"table": "orders", "primary_key": ["order_id"], "chunk_size": 16,
               "columns": {"order_id": {"type": "string", "length": 20}, "amount": {"type": "decimal"}}},
    "lines_flat": {"table": "order_lines", "chunk_size": 40,
                   "columns": {"sku": {"type": "string", "length": 32}, "qty": {"type": "integer"}}},
}
FAILING = {"api.short_fail", "api.cursor_loop", "api.stuck"}


def api_models() -> dict[str, Any]:
    out = {}
    for name, model in API_MODELS.items():
        model = dict(model)
        keyless = model.pop("keyless", False)
        out[name] = {**model, "columns": COLUMNS, **({} if keyless else {"primary_key": ["id"]})}
    return out


def build(tmp_path: Path, base_url: str) -> Project:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_sample_db(erp_url, orders=SQL_ORDERS)
    sources = {"api": {"type": "api", "base_url": base_url, "throttle": {"concurrency": 3, "max_retries": 2},
                       "models": api_models()},
               "erp": {"type": "sql", "url": erp_url, "models": SQL_MODELS}}
    return project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                           "storage": {"root": str(tmp_path / "storage")}})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("parity")
    handler = PagingApi()
    with StubServer(handler=handler) as server:
        project = build(tmp_path, server.url(""))
        first = embedded(project, tmp_path)
        handler.reset()
        second = chained(project, tmp_path)
    return project, first, second


MODELS = [f"api.{name}" for name in API_MODELS] + [f"erp.{name}" for name in SQL_MODELS]


@pytest.mark.parametrize("model", MODELS)
def test_both_modes_report_the_same_error(runs, model):
    _, (_, _, errors), (_, _, chain_errors) = runs
    assert chain_errors[model] == errors[model]
    assert (errors[model] is not None) == (model in FAILING)


@pytest.mark.parametrize("model", MODELS)
def test_both_modes_report_the_same_warnings(runs, model):
    _, (_, warnings, _), (_, chain_warnings, _) = runs
    assert chain_warnings[model] == warnings[model]


@pytest.mark.parametrize("model", [m for m in MODELS if m not in FAILING])
def test_both_modes_land_the_same_table(runs, model):
    _, (tables, _, _), (chain_tables, _, _) = runs
    assert chain_tables[model] == tables[model]
    assert tables[model]


def test_what_each_case_is_expected_to_say(runs):
    """The shared answers are the right ones, not merely the same."""
    _, (tables, warnings, errors), _ = runs
    assert len(tables["api.numbered"]) == len(tables["api.limited"]) == ITEMS
    assert len(tables["api.capped_fanned"]) == 2 * SIZE and len(tables["api.capped_chained"]) == 3 * SIZE
    assert warnings["api.capped_fanned"] == ["api.capped_fanned: stopped at max_pages=2; the API has more pages"]
    assert warnings["api.capped_chained"] == ["api.capped_chained: stopped at max_pages=3; the API has more pages"]
    assert warnings["api.short_warn"] == [f"api.short_warn: the API stated {ITEMS + 15} records but {ITEMS} "
                                          f"arrived (shortfall 15)"]
    assert errors["api.short_fail"].startswith(f"api.short_fail: the API stated {ITEMS + 15} records")
    assert "cursor '7' repeated at page 2" in errors["api.cursor_loop"] and "looping" in errors["api.cursor_loop"]
    assert "page 2" in errors["api.stuck"] and "ignores the paging parameters" in errors["api.stuck"]
    assert len(tables["erp.orders"]) == SQL_ORDERS
