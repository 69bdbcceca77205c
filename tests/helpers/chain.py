"""What the chain tests share: manifests over the sample API and sample database, a target with the
plan applied, a queue store that records what was sent, a snapshot of the target's tables to compare
the chain against the embedded run, and the in-process Harness that drives the chain."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from samples.sample_db import create_sample_db
from shared.chain import Chain
from shared.chain.messages import decode
from shared.chain.names import TRANSFORM
from shared.chain.pump import drain
from shared.config.project import Project
from shared.ledger import RunLedger
from shared.pipeline import run_models
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from shared.target.columns import META_COLUMNS
from shared.target.dialects import create_target_engine
from tests.helpers.flow import project_for

RATE = 50.0
API_COUNTS = {"customers": 130, "orders": 55, "events": 70, "tickets": 70, "products": 70}
SQL_ORDERS = 40


def shop_models() -> dict[str, Any]:
    return {
        "customers": {"path": "/v1/customers", "records": "data", "params": {"per_page": 25}, "primary_key": ["id"],
                      "pii_scan": "redact",
                      "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"},
                      "columns": {"id": {"type": "integer"},
                                  "name": {"path": "full_name", "type": "string", "pii": "hash"},
                                  "email": {"type": "string", "pii": "drop"},
                                  "phone": {"type": "string", "pii": {"rule": "mask", "keep": 2}},
                                  "iban": {"type": "string", "pii": "redact"},
                                  "city": {"path": "address.city", "type": "string", "length": 100},
                                  "created_at": {"path": "created", "type": "datetime"},
                                  "balance": {"type": "decimal", "precision": 12, "scale": 2},
                                  "tags": {"type": "json"}, "notes": {"type": "text"}}},
        "products": {"path": "/v1/products", "records": "items", "primary_key": ["sku"],
                     "pagination": {"type": "offset", "limit": 30, "total_path": "total"},
                     "columns": {"sku": {"type": "string"}, "name": {"type": "string"}}},
        "orders": {"path": "/v1/orders", "records": "orders", "params": {"limit": 20}, "primary_key": ["order_id"],
                   "pagination": {"type": "cursor", "cursor_path": "next_cursor"},
                   "columns": {"order_id": {"type": "string"},
                               "amount": {"type": "decimal", "precision": 12, "scale": 2},
                               "created_at": {"type": "datetime"}, "lines": {"type": "json"}}},
        "events": {"path": "/v1/events", "records": "value", "params": {"top": 20}, "primary_key": ["event_id"],
                   "pagination": {"type": "next_link", "next_path": "@odata.nextLink"},
                   "columns": {"event_id": {"type": "integer"}, "type": {"type": "string", "length": 50},
                               "payload": {"type": "json", "pii_fields": {"actor_email": "hash"}}}},
        "tickets": {"path": "/v1/tickets", "params": {"per_page": 30}, "primary_key": ["ticket_id"],
                    "pagination": {"type": "link_header"},
                    "columns": {"ticket_id": {"type": "integer"}, "opened": {"type": "date"}}},
        "countries": {"path": "/v1/countries", "columns": {"code": {"type": "string"}, "name": {"type": "string"}}},
    }


def erp_models() -> dict[str, Any]:
    return {
        "orders": {"table": "orders", "primary_key": ["order_id"], "chunk_size": 16, "pii_scan": "redact",
                   "columns": {"order_id": {"type": "string", "length": 20},
                               "email": {"path": "customer_email", "type": "string", "pii": "hash"},
                               "amount": {"type": "decimal", "precision": 12, "scale": 2},
                               "created_at": {"type": "datetime"}, "note": {"type": "text"}}},
        "lines": {"table": "order_lines", "primary_key": ["order_id", "line_no"], "chunk_size": 25,
                  "columns": {"order_id": {"type": "string", "length": 20}, "line_no": {"type": "integer"},
                              "qty": {"type": "integer"}}},
        "lines_flat": {"table": "order_lines", "chunk_size": 40,
                       "columns": {"sku": {"type": "string", "length": 32}, "unit_price": {"type": "decimal"}}},
    }


def build_project(tmp_path: Path, api_url: str, *, shop: list[str] | None = None, erp: list[str] | None = None,
                  throttle: dict | None = None, settings: dict | None = None) -> Project:
    """`shop`/`erp`: the model names to include (None: all, []: none of that source); `settings`:
    added to settings.yml."""
    sources: dict[str, Any] = {}
    models = shop_models()
    chosen = {k: v for k, v in models.items() if shop is None or k in shop}
    if chosen:
        throttled = {"rate": RATE, "burst": 5} if throttle is None else throttle
        sources["shop"] = {"type": "api", "base_url": api_url, "throttle": throttled,
                           "models": chosen}
    models = erp_models()
    chosen = {k: v for k, v in models.items() if erp is None or k in erp}
    if chosen:
        erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
        create_sample_db(erp_url, orders=SQL_ORDERS)
        sources["erp"] = {"type": "sql", "url": erp_url, "models": chosen}
    return project_for(tmp_path, sources, {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                                           "storage": {"root": str(tmp_path / 'storage')}, **(settings or {})})


def applied_target(project: Project, path: Path) -> sa.Engine:
    engine = create_target_engine(f"sqlite:///{path}", project.sources)
    with engine.connect() as connection:
        plan = compute_plan(connection, project, PlanOptions())
    apply_stamped(engine, project, PlanStamp.of(plan))
    return engine


def reference_snapshot(project: Project, tmp_path: Path) -> dict:
    """What the embedded run (`main.py run`) puts in the target for the same manifests."""
    engine = applied_target(project, tmp_path / "reference.db")
    try:
        summary = run_models(project, project.models(), engine=engine,
                             ledger=RunLedger(LocalBlobStore(tmp_path / "reference-ledger")))
        assert summary.ok, summary.render()
        return snapshot(engine, project)
    finally:
        engine.dispose()


def snapshot(engine: sa.Engine, project: Project) -> dict:
    """Every table's rows without kspyder's load columns, sorted: comparable across runs."""
    out = {}
    with engine.connect() as connection:
        for ref in project.models():
            table = sa.Table(ref.name, sa.MetaData(), schema=ref.source_name, autoload_with=connection)
            columns = [c for c in table.c if c.name not in META_COLUMNS]
            rows = connection.execute(sa.select(*columns)).all()
            out[ref.qualified] = sorted((tuple(row) for row in rows), key=repr)
    return out


class RecordingQueues:
    """A QueueStore wrapper that records every send (queue, body, delay). With `honor_delays`
    False the message is sent without delay, so a test need not wait out the spreading."""

    def __init__(self, inner, honor_delays: bool = False):
        self.inner, self.honor_delays = inner, honor_delays
        self.sent: list[tuple[str, dict, float]] = []

    def send(self, queue: str, message: dict, delay: float = 0.0) -> None:
        self.sent.append((queue, message, delay))
        self.inner.send(queue, message, delay if self.honor_delays else 0.0)

    def receive(self, queue, max_messages=16, visibility_timeout=30.0):
        return self.inner.receive(queue, max_messages, visibility_timeout)

    def delete(self, queue, message) -> None:
        self.inner.delete(queue, message)

    def peek_count(self, queue: str) -> int:
        return self.inner.peek_count(queue)


def transform_events(queues) -> list:
    """Every message on the transform queue, decoded (and removed)."""
    found = []
    while batch := queues.receive(TRANSFORM, 32, 30):
        for message in batch:
            found.append(decode(message.body))
            queues.delete(TRANSFORM, message)
    return found


class Harness:
    """Local blob store + recorded local queues + an applied SQLite target, and a Chain per message."""

    def __init__(self, tmp_path, project, honor_delays=False, **chain_options):
        self.project = project
        self.blobs = LocalBlobStore(tmp_path / "blobs")
        self.queues = RecordingQueues(LocalQueueStore(tmp_path / "queues"), honor_delays)
        self.engine = applied_target(project, tmp_path / "chain.db")
        self.options = chain_options

    def chain(self) -> Chain:
        return Chain(self.project, self.blobs, self.queues, lambda: self.engine, **self.options)

    def run(self, selectors=(), **pump_options) -> str:
        with self.chain() as chain:
            run_id = chain.start_run(selectors, trigger="test")
        drain(self.chain, self.queues, timeout=30, **pump_options)
        return run_id

    def status(self, run_id):
        with self.chain() as chain:
            return chain.run_status(run_id)

    def sent(self, queue, model=None):
        return [(decode(body), delay) for q, body, delay in self.queues.sent
                if q == queue and (model is None or body.get("model") == model)]
