"""Nested lists as child tables (issue 16 §2), against an emulation of Shopify's orders, in
`main.py run` and through the queue chain, on SQLite, PostgreSQL and MariaDB: children follow
their parent through upserts (a line removed from an order disappears), nest, and are stripped of
PII like parent columns."""
from __future__ import annotations

import base64
import copy
import csv
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared.chain import Chain
from shared.chain.pump import drain
from shared.config.child_tables import child_tables, walk
from shared.config.project import load_project
from shared.inbox.drops import ingest_file
from shared.ledger import RunLedger
from shared.load.children import ChildTables
from shared.load.staging import swap_in_all
from shared.outputs.export import export_model
from shared.pipeline import run_models
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from shared.target.dialects import create_target_engine, drop_schema
from shared.target.staging_names import is_staging, staging_name
from tests.helpers.flow import TEST_KEY, extract_all, project_for
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.probe import run_probe

PATH = "/admin/api/2024-01/orders.json"


def order(i: int) -> dict[str, Any]:
    """An order as https://shopify.dev/docs/api/admin-rest/2024-01/resources/order shows it: `line_items`
    with their `tax_lines` and custom `properties` (name/value pairs the buyer typed), `shipping_lines`
    with the recipient's `phone`, and `payment_gateway_names`, a list of strings."""
    return {
        "id": 450789469 + i, "name": f"#{1000 + i}", "total_price": f"{i * 10 + 0.5:.2f}",
        "line_items": [
            {"id": 466157049 + 10 * i + n, "sku": f"IPOD-{i}-{n}", "quantity": n + 1, "price": "199.00",
             "tax_lines": [{"title": "State Tax", "rate": 0.06, "price": "11.94"}],
             "properties": [{"name": "engraving", "value": f"for bob{i}@example.com"}]}
            for n in range(2)],
        "shipping_lines": [{"code": "INT.TP", "title": "Small Packet International Air",
                            "phone": f"+1 555 010 {i:04d}"}],
        "payment_gateway_names": ["bogus", "shopify_payments"][: 1 + i % 2],
    }


class Shopify:
    """`GET /admin/api/2024-01/orders.json`: `{"orders": [...]}`, `limit` per page and the next page's
    `page_info` cursor in `Link: <...>; rel="next"` (https://shopify.dev/docs/api/admin-rest/usage/pagination)."""

    def __init__(self, count: int) -> None:
        self.orders = [order(i) for i in range(count)]

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != PATH:
            return Reply(status=404, body={"errors": "Not Found"})
        query = {k: v[0] for k, v in seen.query.items()}
        limit, start = int(query.get("limit", 50)), int(query.get("page_info", "0"))
        end = min(start + limit, len(self.orders))
        headers = {"Link": f'<{PATH}?limit={limit}&page_info={end}>; rel="next"'} if end < len(self.orders) else {}
        return Reply(body={"orders": self.orders[start:end]}, headers=headers)


ORDERS_MODEL = {
    "path": PATH, "records": "orders", "params": {"limit": 3}, "primary_key": ["id"],
    "pagination": {"type": "link_header"},
    "columns": {
        "id": {"type": "bigint"},
        "name": {"type": "string", "length": 20},
        "total_price": {"type": "decimal", "precision": 12, "scale": 2},
        "line_items": {"type": "table", "columns": {
            "sku": {"type": "string", "length": 40},
            "quantity": {"type": "integer"},
            "price": {"type": "decimal", "precision": 12, "scale": 2},
            "tax_lines": {"type": "table", "columns": {"title": {"type": "string", "length": 40},
                                                       "rate": {"type": "float"}}},
            "properties": {"type": "table", "columns": {"name": {"type": "string", "length": 40},
                                                        "value": {"type": "text"}}},
        }},
        "shipping_lines": {"type": "table", "columns": {"code": {"type": "string", "length": 20},
                                                        "phone": {"type": "string", "pii": "hash"}}},
        "payment_gateway_names": {"type": "table", "columns": {"value": {"type": "string", "length": 40}}},
    },
}
TABLES = ["orders", "orders__line_items", "orders__line_items__properties", "orders__line_items__tax_lines",
          "orders__payment_gateway_names", "orders__shipping_lines"]


class Target:
    """A project over the emulation, its tables applied on `url` in a schema of its own."""

    def __init__(self, url: str, tmp_path: Path, base_url: str, model: dict[str, Any] = ORDERS_MODEL,
                 source: dict[str, Any] | None = None):
        """`source`: another source than the orders API, named `erp`."""
        self.schema = "erp" if source else f"kt_child_{uuid.uuid4().hex[:8]}"
        self.tmp_path = tmp_path
        self.project = project_for(
            tmp_path, {self.schema: source or {"type": "api", "base_url": base_url, "models": {"orders": model}}},
            {"target_url": url, "storage": {"root": str(tmp_path / "storage")}, "pii": {"scan": "redact"}})
        self.engine = create_target_engine(url, [self.schema])
        with self.engine.connect() as connection:
            plan = compute_plan(connection, self.project, PlanOptions(selectors=(self.schema,)))
        self.plan = plan
        apply_stamped(self.engine, self.project, PlanStamp.of(plan))
        self.runs = 0

    def run_embedded(self) -> None:
        self.runs += 1
        summary = run_models(self.project, self.project.models(), engine=self.engine,
                             ledger=RunLedger(LocalBlobStore(self.tmp_path / f"ledger-{self.runs}")))
        assert summary.ok, summary.render()

    def run_chained(self) -> None:
        self.runs += 1
        folder = self.tmp_path / f"chain-{self.runs}"
        blobs, queues = LocalBlobStore(folder / "blobs"), LocalQueueStore(folder / "queues")

        def make() -> Chain:
            return Chain(self.project, blobs, queues, lambda: self.engine)

        with make() as chain:
            run_id = chain.start_run((), trigger="test")
        drain(make, queues, timeout=60)
        with make() as chain:
            status = chain.run_status(run_id)
        assert status["done"] and status["errors"] == [], status

    def rows(self, table: str, *columns: str) -> list[tuple]:
        with self.engine.connect() as connection:
            found = connection.execute(sa.text(f"SELECT {', '.join(columns)} FROM {self.schema}.{table}")).all()
        return sorted(tuple(row) for row in found)

    def close(self) -> None:
        with self.engine.begin() as connection:
            drop_schema(connection, self.schema)
        self.engine.dispose()


@pytest.fixture()
def shop():
    api = Shopify(7)
    with StubServer(handler=api) as server:
        yield api, server.url("")


@pytest.fixture()
def target(url, tmp_path, shop):
    made = Target(url, tmp_path, shop[1])
    yield made
    made.close()


def digest(text: str) -> str:
    return hmac.new(TEST_KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


def test_plan_creates_a_table_per_child_with_the_parent_key_and_positions(target):
    created = sorted(c.table_name for c in target.plan.changes if c.kind == "create_table")
    assert created == TABLES
    columns = {c.name: c for c in next(c for c in target.plan.changes
                                       if c.table == "orders__line_items__tax_lines").columns}
    assert [n for n, c in columns.items() if c.primary_key] == ["id", "_kspyder_position_line_items",
                                                                "_kspyder_position"]
    assert list(columns) == ["id", "_kspyder_position_line_items", "_kspyder_position", "title", "rate",
                             "_kspyder_run_id", "_kspyder_loaded_at"]
    shipping = next(c for c in target.plan.changes if c.table == "orders__shipping_lines").columns
    assert [(c.name, c.length) for c in shipping if c.name == "phone"] == [("phone", 64)]   # a hash


@pytest.mark.parametrize("mode", ["embedded", "chained"])
def test_children_follow_their_parent_through_upserts(target, shop, mode):
    api, _ = shop
    run = target.run_embedded if mode == "embedded" else target.run_chained
    run()
    first = 450789469
    assert len(target.rows("orders", "id")) == 7
    assert target.rows("orders__line_items", "id", "_kspyder_position", "sku", "quantity", "price")[:2] == [
        (first, 0, "IPOD-0-0", 1, Decimal("199.00")), (first, 1, "IPOD-0-1", 2, Decimal("199.00"))]
    assert len(target.rows("orders__line_items", "id")) == 14
    assert len(target.rows("orders__line_items__tax_lines", "id")) == 14
    assert target.rows("orders__payment_gateway_names", "id", "_kspyder_position", "value")[:3] == [
        (first, 0, "bogus"), (first + 1, 0, "bogus"), (first + 1, 1, "shopify_payments")]

    changed = copy.deepcopy(api.orders)
    changed[0]["line_items"].pop()                       # a line removed from an order
    changed[1]["line_items"][0]["tax_lines"] = []        # a nested list emptied
    changed[2]["payment_gateway_names"] = ["manual"]     # a list of scalars shortened
    changed[3]["line_items"][1]["quantity"] = 9
    api.orders = changed
    run()
    lines = target.rows("orders__line_items", "id", "_kspyder_position", "quantity")
    assert [row for row in lines if row[0] == first] == [(first, 0, 1)]
    assert (first + 3, 1, 9) in lines and len(lines) == 13
    taxes = target.rows("orders__line_items__tax_lines", "id", "_kspyder_position_line_items")
    assert (first + 1, 0) not in taxes and (first, 1) not in taxes and len(taxes) == 12
    gateways = target.rows("orders__payment_gateway_names", "id", "value")
    assert [row for row in gateways if row[0] == first + 2] == [(first + 2, "manual")]
    run()   # the same answer again: no duplicates
    assert target.rows("orders__line_items", "id", "_kspyder_position", "quantity") == lines


def test_pii_rules_and_the_free_text_scan_apply_in_child_columns(target):
    target.run_embedded()
    phones = target.rows("orders__shipping_lines", "id", "phone")
    assert phones[0] == (450789469, digest("+1 555 010 0000"))
    values = target.rows("orders__line_items__properties", "value")
    assert values and all("@" not in v for (v,) in values) and all("[" in v for (v,) in values)


def test_a_dropped_json_file_fills_child_tables_and_a_csv_file_leaves_them(target):
    ledger = RunLedger(LocalBlobStore(target.tmp_path / "drops"))
    orders = [order(i) for i in range(3)]
    orders[1]["line_items"] = orders[1]["line_items"][:1]
    data = json.dumps({"orders": orders}).encode()
    result = ingest_file(target.project, target.schema, "orders", "orders.json", data, target.engine, ledger)
    assert result.rows == 3
    assert [row[0] - 450789469 for row in target.rows("orders__line_items", "id")] == [0, 0, 1, 2, 2]
    assert len(target.rows("orders__line_items__properties", "id")) == 5

    csv = b"id,name,total_price\n450789469,#1000,99.00\n"
    ingest_file(target.project, target.schema, "orders", "totals.csv", csv, target.engine, ledger)
    assert (Decimal("99.00"),) in target.rows("orders", "total_price")
    assert len(target.rows("orders__line_items", "id")) == 5   # a CSV row carries no lists: children kept


def test_extract_to_csv_writes_one_file_per_table(shop, tmp_path):
    project = project_for(tmp_path, {"shop": {"type": "api", "base_url": shop[1],
                                              "models": {"orders": ORDERS_MODEL}}})
    [ref] = project.models(["shop.orders"])
    outcome = export_model(project, ref, "csv", str(tmp_path / "out"))
    assert outcome.error is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"shop.{t}.csv" for t in TABLES]
    with open(tmp_path / "out" / "shop.orders__line_items__tax_lines.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows[:2] == [["id", "_kspyder_position_line_items", "_kspyder_position", "title", "rate"],
                        ["450789469", "0", "0", "State Tax", "0.06"]]
    assert len(rows) == 15
    with open(tmp_path / "out" / "shop.orders__shipping_lines.csv", newline="") as file:
        assert next(csv.DictReader(file))["phone"] == digest("+1 555 010 0000")


def test_probe_proposes_child_tables_for_lists_of_objects(shop, tmp_path):
    result = run_probe(shop[1] + PATH + "?limit=3", "--source", "shop")
    assert result.exit_code == 0, result.output
    (tmp_path / "connector_models.yml").write_text(result.stdout)
    model = load_project(tmp_path, env={"KSPYDER_PII_KEY": TEST_KEY}).sources["shop"].models["orders"]
    assert model.primary_key == ["id"] and set(model.tables) == {"line_items", "shipping_lines"}
    lines = model.tables["line_items"].columns or {}
    assert {n: lines[n].type.value for n in ("sku", "quantity", "price", "tax_lines")} == {
        "sku": "string", "quantity": "integer", "price": "decimal", "tax_lines": "table"}
    assert model.columns["payment_gateway_names"].type.value == "json"   # a list of strings: left as JSON
    assert model.pii_scan == "redact"   # the e-mails typed in line item properties
    assert "rows of the child table <model>__line_items" in result.stdout


def test_plan_keeps_a_removed_child_table_until_prune_and_rebuild_recreates_all(shop, tmp_path):
    made = Target(f"sqlite:///{tmp_path / 'target.db'}", tmp_path, shop[1])
    try:
        fewer = copy.deepcopy(ORDERS_MODEL)
        del fewer["columns"]["shipping_lines"]
        project = project_for(tmp_path, {made.schema: {"type": "api", "base_url": shop[1],
                                                       "models": {"orders": fewer}}})
        with made.engine.connect() as connection:
            plan = compute_plan(connection, project, PlanOptions(selectors=(made.schema,)))
            assert plan.changes == () and [k.table for k in plan.kept] == ["orders__shipping_lines"]
            whole = compute_plan(connection, project, PlanOptions(prune=True))
            assert [(c.kind, c.table) for c in whole.changes] == [("drop_table", "orders__shipping_lines")]
            rebuild = compute_plan(connection, project, PlanOptions(selectors=(made.schema,), rebuild=True))
        created = sorted(c.table for c in rebuild.changes if c.kind == "create_table")
        assert created == [t for t in TABLES if t != "orders__shipping_lines"]
    finally:
        made.close()


def test_snake_case_names_child_tables_and_their_columns(tmp_path):
    taxes = {"type": "table", "columns": {"Rate": {"type": "float"}}}
    model = {"path": "/o", "primary_key": ["OrderId"], "columns": {
        "OrderId": {"type": "integer"},
        "LineItems": {"type": "table", "columns": {"UnitPrice": {"type": "float"}, "TaxLines": taxes}}}}
    project = project_for(tmp_path, {"shop": {"type": "api", "base_url": "http://127.0.0.1:1", "naming": "snake_case",
                                              "models": {"SalesOrder": model}}})
    children = list(walk(child_tables("sales_order", project.sources["shop"].models["sales_order"])))
    assert [(c.name, c.path, c.key, {n: col.path for n, col in c.columns.items()}) for c in children] == [
        ("sales_order__line_items", "LineItems", ["order_id", "_kspyder_position"], {"unit_price": "UnitPrice"}),
        ("sales_order__line_items__tax_lines", "TaxLines",
         ["order_id", "_kspyder_position_line_items", "_kspyder_position"], {"rate": "Rate"})]


def run_once(tmp_path: Path, base_url: str, model: dict[str, Any]):
    project = project_for(tmp_path, {"shop": {"type": "api", "base_url": base_url, "models": {"orders": model}}},
                          {"target_url": f"sqlite:///{tmp_path / 'target.db'}",
                           "storage": {"root": str(tmp_path / "storage")}})
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}", ["shop"])
    with engine.connect() as connection:
        plan = compute_plan(connection, project, PlanOptions())
    apply_stamped(engine, project, PlanStamp.of(plan))
    try:
        return run_models(project, project.models(), engine=engine,
                          ledger=RunLedger(LocalBlobStore(tmp_path / "ledger")))
    finally:
        engine.dispose()


def test_a_child_value_that_does_not_convert_names_record_table_item_and_column(shop, tmp_path):
    api, base_url = shop
    api.orders[4]["line_items"][1]["quantity"] = "two"
    summary = run_once(tmp_path, base_url, ORDERS_MODEL)
    [result] = summary.results
    assert result.error is not None and "two" not in result.error
    assert result.error.endswith("shop.orders: record #4, column 'line_items': item #1, column 'quantity': "
                                 "expected an integer, got text that is not a number (set on_error: null on the "
                                 "column to load NULL instead)")


def test_the_first_page_guard_stops_unscanned_pii_in_a_child_column(shop, tmp_path):
    model = copy.deepcopy(ORDERS_MODEL)
    model["pii_scan"] = "off"
    model["columns"]["line_items"]["columns"]["properties"]["columns"]["value"]["pii_scan"] = "off"
    summary = run_once(tmp_path, base_url=shop[1], model=model)
    [result] = summary.results
    assert result.error is not None and "example.com" not in result.error
    assert "model shop.orders__line_items__properties: column 'value' holds e-mail" in result.error


def test_staged_children_are_swapped_in_with_their_parent(target, shop):
    """What a parent replaced whole at the run's end (`write: replace`) needs of its children: rows
    staged out of readers' sight, swapped in together, stale staging of other runs dropped."""
    api, _ = shop
    target.run_embedded()
    [ref] = target.project.models()
    api.orders = api.orders[:2]
    records, _ = extract_all(target.project, ref.qualified)
    children = ChildTables.of(target.engine, ref, "[REDACTED]", False, staged_run="run-2")
    assert children is not None
    leftover = ChildTables.of(target.engine, ref, "[REDACTED]", False, staged_run="killed-run")
    assert leftover is not None
    leftover.stage()
    children.stage()
    staged = sorted(t for t in sa.inspect(target.engine).get_table_names(schema=target.schema) if is_staging(t))
    assert staged == sorted(staging_name(t, "run-2") for t in TABLES[1:])   # the killed run's are gone
    batch = children.prepare(records, [(r["id"],) for r in records], [0], ("run-2", datetime.now(UTC)))
    with target.engine.begin() as connection:
        children.write(connection, batch)
    assert len(target.rows("orders__line_items", "id")) == 14   # readers still see the earlier run's
    swap_in_all(target.engine, children.swap_pairs(), {"_kspyder_run_id": "run-2"})
    assert target.rows("orders__line_items", "_kspyder_run_id") == [("run-2",)] * 4
    assert len(target.rows("orders__line_items__tax_lines", "id")) == 4
    assert not [t for t in sa.inspect(target.engine).get_table_names(schema=target.schema) if is_staging(t)]


def test_binary_child_columns_travel_the_chain_as_base64(shop, tmp_path):
    api, base_url = shop
    for i, placed in enumerate(api.orders):
        placed["line_items"][0]["thumbnail"] = base64.b64encode(bytes([i, 0, 255])).decode()
    model = copy.deepcopy(ORDERS_MODEL)
    model["columns"]["line_items"]["columns"]["thumbnail"] = {"type": "binary"}
    made = Target(f"sqlite:///{tmp_path / 'target.db'}", tmp_path, base_url, model)
    try:
        made.run_chained()
        found = made.rows("orders__line_items", "id", "_kspyder_position", "thumbnail")
        assert found[:2] == [(450789469, 0, bytes([0, 0, 255])), (450789469, 1, None)]
    finally:
        made.close()


@pytest.mark.parametrize("mode", ["embedded", "chained"])
def test_a_sql_sources_json_column_of_lists_fills_a_child_table(tmp_path, mode):
    source_url = f"sqlite:///{tmp_path / 'erp.db'}"
    engine = sa.create_engine(source_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total NUMERIC, lines JSON)")
        for i in range(5):
            lines = json.dumps([{"sku": f"S{i}-{n}", "qty": n + 1} for n in range(i % 3)])
            connection.exec_driver_sql("INSERT INTO invoices VALUES (?, ?, ?)", (i, i * 2.5, lines))
    engine.dispose()
    model = {"table": "invoices", "primary_key": ["id"], "columns": {
        "id": {"type": "integer"}, "total": {"type": "decimal", "precision": 10, "scale": 2},
        "lines": {"type": "table", "columns": {"sku": {"type": "string", "length": 20}, "qty": {"type": "integer"}}}}}
    made = Target(f"sqlite:///{tmp_path / 'target.db'}", tmp_path, "",
                  source={"type": "sql", "url": source_url, "models": {"invoices": model}})
    try:
        made.run_embedded() if mode == "embedded" else made.run_chained()
        assert made.rows("invoices__lines", "id", "_kspyder_position", "sku", "qty") == [
            (1, 0, "S1-0", 1), (2, 0, "S2-0", 1), (2, 1, "S2-1", 2), (4, 0, "S4-0", 1)]
    finally:
        made.close()


@pytest.fixture()
def soft_target(url, tmp_path, shop):
    made = Target(url, tmp_path, shop[1], {**ORDERS_MODEL, "deletes": "soft"})
    yield made
    made.close()


@pytest.mark.parametrize("mode", ["embedded", "chained"])
def test_children_are_soft_deleted_with_their_parent_and_come_back_with_it(soft_target, shop, mode):
    api, _ = shop
    target = soft_target
    run = target.run_embedded if mode == "embedded" else target.run_chained
    run()
    first = 450789469
    gone = api.orders.pop(2)
    run()
    marked = target.rows("orders__line_items", "id", "_kspyder_deleted_at")
    assert [i for i, at in marked if at is not None] == [first + 2, first + 2]
    assert len(target.rows("orders__line_items__tax_lines", "id")) == 14   # kept, marked
    taxes = target.rows("orders__line_items__tax_lines", "id", "_kspyder_deleted_at")
    assert {i for i, at in taxes if at is not None} == {first + 2}
    [(order_at,)] = [(at,) for i, at in target.rows("orders", "id", "_kspyder_deleted_at") if i == first + 2]
    assert {at for i, at in marked if i == first + 2} == {order_at}   # the parent's time
    api.orders.insert(2, gone)
    run()
    assert all(at is None for _, at in target.rows("orders__line_items", "id", "_kspyder_deleted_at"))
    assert all(at is None for _, at in target.rows("orders__line_items__tax_lines", "id", "_kspyder_deleted_at"))


@pytest.mark.parametrize("mode", ["embedded", "chained"])
def test_a_keyed_replace_swaps_its_children_in_with_it(url, tmp_path, shop, mode):
    api, base_url = shop
    target = Target(url, tmp_path, base_url, {**ORDERS_MODEL, "write": "replace"})
    try:
        run = target.run_embedded if mode == "embedded" else target.run_chained
        run()
        assert len(target.rows("orders__line_items", "id")) == 14
        api.orders = api.orders[:3]
        api.orders[0]["line_items"].pop()
        run()
        assert len(target.rows("orders", "id")) == 3
        assert len(target.rows("orders__line_items", "id")) == 5
        assert len(target.rows("orders__line_items__tax_lines", "id")) == 5
        assert not [t for t in sa.inspect(target.engine).get_table_names(schema=target.schema) if is_staging(t)]
    finally:
        target.close()
