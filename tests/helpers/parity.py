"""The parity suite's cases (issue 13 §4): one API with every paging style and the misbehaving ones,
the manifests that read it, and each mode's answer in one shape, so the in-process chain
(`tests/flows/test_page_engine_parity.py`) and the local host on Azurite
(`tests/flows/test_page_engine_parity_azurite.py`) compare against the embedded run the same way."""
from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from samples.sample_db import create_sample_db
from shared.config.project import Project
from shared.ledger import RunLedger
from shared.pipeline import run_models
from shared.storage import LocalBlobStore
from tests.helpers.chain import Harness, applied_target, snapshot
from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen

ITEMS = 45
SIZE = 10
SQL_ORDERS = 40

Answers = tuple[dict, dict, dict]   # (tables, warnings, errors) by qualified model name


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
        self.busy = False

    def reset(self) -> None:
        with self.lock:
            self.limited = self.busy = False

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
        if path == "/short-pages":   # states 15 more records than it has
            return Reply(body={"data": span((page - 1) * SIZE), "total": ITEMS + 15})
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
        if path in ("/body-offset", "/body-pages"):   # paging values in a POST's JSON body
            body = json.loads(seen.body or b"{}")
            if seen.method != "POST" or body.get("q") != "all":
                return Reply(status=400, body={"error": "expected the model's query body"})
            if path == "/body-offset":
                return Reply(body={"data": span(int(body["from"]), int(body["size"])), "total": ITEMS})
            start = (int(body["page"]) - 1) * SIZE
            return Reply(body={"data": span(start), "has_more": start + SIZE < ITEMS})
        if path == "/header-cursor":
            start = int(query.get("after", 0))
            more = start + SIZE < ITEMS
            return Reply(body={"data": span(start)}, headers={"X-Next-Cursor": str(start + SIZE)} if more else {})
        if path in ("/rules-gone", "/rules-busy", "/rules-not-ok"):   # answers only `responses:` rules explain
            start = int(query.get("cursor", 0))
            more = start + SIZE < ITEMS
            page_body = {"ok": True, "data": span(start), "next": str(start + SIZE) if more else None}
            if path == "/rules-gone" and start == 2 * SIZE:
                return Reply(status=404, body={"error": "gone"})
            if path == "/rules-not-ok" and start == 2 * SIZE:
                return Reply(body={"ok": False, "error": "account_inactive", "user": "jane@example.com"})
            if path == "/rules-busy" and start == SIZE:
                with self.lock:
                    first, self.busy = not self.busy, True
                if first:
                    return Reply(body={"ok": True, "status": "busy"})
            return Reply(body=page_body)
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
    "body_offset": {"path": "/body-offset", "method": "POST", "idempotent": True, "json": {"q": "all"},
                    "records": "data", "pagination": {"type": "offset", "offset_param": "from", "limit_param": "size",
                                                      "limit": SIZE, "total_path": "total", "in": "body"}},
    "body_pages": {"path": "/body-pages", "method": "POST", "json": {"q": "all"}, "records": "data",
                   "pagination": {"type": "page_number", "in": "body", "has_more_path": "has_more"}},
    "header_cursor": {"path": "/header-cursor", "records": "data",
                      "pagination": {"type": "header_cursor", "header": "X-Next-Cursor", "param": "after"}},
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
    "short_numbered": {"path": "/short-pages", "records": "data",
                       "pagination": {"type": "page_number", "size_param": "per_page", "size": SIZE,
                                      "total_path": "total", "on_shortfall": "warn"}},
    "cursor_loop": {"path": "/cursor-loop", "records": "data",
                    "pagination": {"type": "cursor", "cursor_path": "next"}},
    "stuck": {"path": "/stuck", "records": "data", "params": {"per_page": SIZE},
              "pagination": {"type": "page_number"}},
    "rules_gone": {"path": "/rules-gone", "records": "data", "responses": [{"status": 404, "action": "empty"}],
                   "pagination": {"type": "cursor", "cursor_path": "next"}},
    "rules_busy": {"path": "/rules-busy", "records": "data",
                   "responses": [{"body_path": "status", "body_value": "busy", "action": "retry"}],
                   "pagination": {"type": "cursor", "cursor_path": "next"}},
    "rules_not_ok": {"path": "/rules-not-ok", "records": "data",
                     "responses": [{"body_path": "ok", "body_value": False, "action": "fail",
                                    "message": "the API answered ok: false"}],
                     "pagination": {"type": "cursor", "cursor_path": "next"}},
}
SQL_MODELS: dict[str, dict[str, Any]] = {
    "orders": {"table": "orders", "primary_key": ["order_id"], "chunk_size": 16,
               "columns": {"order_id": {"type": "string", "length": 20}, "amount": {"type": "decimal"}}},
    "lines_flat": {"table": "order_lines", "chunk_size": 40,
                   "columns": {"sku": {"type": "string", "length": 32}, "qty": {"type": "integer"}}},
}
FAILING = {"api.short_fail", "api.cursor_loop", "api.stuck", "api.rules_not_ok"}


def api_models(names: Iterable[str]) -> dict[str, Any]:
    out = {}
    for name in names:
        model = dict(API_MODELS[name])
        keyless = model.pop("keyless", False)
        out[name] = {**model, "columns": COLUMNS, **({} if keyless else {"primary_key": ["id"]})}
    return out


def build(tmp_path: Path, base_url: str, api: Iterable[str] = tuple(API_MODELS),
          sql: Iterable[str] = tuple(SQL_MODELS)) -> Project:
    """The manifests of the named cases (all by default), over the API at `base_url` and a sample database."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_sample_db(erp_url, orders=SQL_ORDERS)
    sources = {"api": {"type": "api", "base_url": base_url, "throttle": {"concurrency": 3, "max_retries": 2},
                       "models": api_models(api)},
               "erp": {"type": "sql", "url": erp_url, "models": {name: SQL_MODELS[name] for name in sql}}}
    return project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                           "storage": {"root": str(tmp_path / "storage")}})


def plain(error: str | None) -> str | None:
    """An error as the run reports it: the chain's status names the exception's type first."""
    return None if error is None else re.sub(r"^[A-Z]\w*Error: ", "", error)


def embedded(project: Project, tmp_path: Path) -> Answers:
    """The embedded run's answers (`run_models`, as `main.py run`)."""
    engine = applied_target(project, tmp_path / "embedded.db")
    try:
        summary = run_models(project, project.models(), engine=engine,
                             ledger=RunLedger(LocalBlobStore(tmp_path / "embedded-ledger")))
        tables = snapshot(engine, project)
    finally:
        engine.dispose()
    warnings = {r.model: list(r.stats.warnings) for r in summary.results}
    errors = {r.model: plain(r.error) for r in summary.results}
    return tables, warnings, errors


def chain_answers(tables: dict, status: dict, outcomes: dict) -> Answers:
    """A chain run's answers from its status (`run_status`) and its ledger's model outcomes."""
    step_errors = {e["model"]: e["message"] for e in status["errors"]}
    warnings = {m: list(status["models"][m]["warnings"]) for m in status["models"]}
    errors = {m: plain(outcomes.get(m, {}).get("error") or step_errors.get(m)) for m in status["models"]}
    return tables, warnings, errors


def chained(project: Project, tmp_path: Path) -> Answers:
    """The queue chain's answers, pumped in process (`tests/helpers/chain.py` Harness)."""
    harness = Harness(tmp_path / "chain", project, max_dequeue_count=2)
    try:
        run_id = harness.run(visibility_timeout=0.2, max_dequeue_count=2)
        tables = snapshot(harness.engine, project)
        outcomes = RunLedger(harness.blobs).model_outcomes(run_id)
        status = harness.status(run_id)
    finally:
        harness.engine.dispose()
    return chain_answers(tables, status, outcomes)


def assert_expected(answers: Answers) -> None:
    """The answers each case is expected to give, for the cases the run had: right, not merely the same."""
    tables, warnings, errors = answers
    for model in ("api.numbered", "api.limited", "api.cursor", "api.body_offset", "api.body_pages",
                  "api.header_cursor"):
        if model in tables:
            assert len(tables[model]) == ITEMS
    if "api.capped_fanned" in tables:
        assert len(tables["api.capped_fanned"]) == 2 * SIZE
        assert warnings["api.capped_fanned"] == ["api.capped_fanned: stopped at max_pages=2; the API has more pages"]
    if "api.capped_chained" in tables:
        assert len(tables["api.capped_chained"]) == 3 * SIZE
        assert warnings["api.capped_chained"] == ["api.capped_chained: stopped at max_pages=3; the API has more pages"]
    if "api.short_warn" in tables:
        assert warnings["api.short_warn"] == [f"api.short_warn: the API stated {ITEMS + 15} records but {ITEMS} "
                                              f"arrived (shortfall 15)"]
    if "api.short_numbered" in tables:
        assert len(tables["api.short_numbered"]) == ITEMS
        assert warnings["api.short_numbered"] == [f"api.short_numbered: the API stated {ITEMS + 15} records but "
                                                  f"{ITEMS} arrived (shortfall 15)"]
    if "api.short_fail" in errors:
        assert errors["api.short_fail"].startswith(f"api.short_fail: the API stated {ITEMS + 15} records")
    if "api.cursor_loop" in errors:
        assert "cursor '7' repeated at page 2" in errors["api.cursor_loop"] and "looping" in errors["api.cursor_loop"]
    if "api.stuck" in errors:
        assert "page 2" in errors["api.stuck"] and "ignores the paging parameters" in errors["api.stuck"]
    if "api.rules_gone" in tables:   # the third page's 404 is the end: two pages
        assert len(tables["api.rules_gone"]) == 2 * SIZE
    if "api.rules_busy" in tables:
        assert len(tables["api.rules_busy"]) == ITEMS
    if "api.rules_not_ok" in errors:
        assert errors["api.rules_not_ok"].endswith("failed: HTTP 200 (the API answered ok: false)")
        assert "jane" not in errors["api.rules_not_ok"] and "account_inactive" not in errors["api.rules_not_ok"]
    if "erp.orders" in tables:
        assert len(tables["erp.orders"]) == SQL_ORDERS
