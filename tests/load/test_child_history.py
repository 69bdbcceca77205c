"""Child tables under `history: scd2` (with and without `deletes: soft`) and `write: append` (issue 16
§2), against an emulation of Shopify's orders, in `main.py run` and through the queue chain, on
SQLite, PostgreSQL and MariaDB: each parent version owns its children (a changed line opens a new
version, a closed one keeps its lines), each appended run keeps its own, an end applied twice adds
nothing, and a run killed before its end leaves parents and children as they were."""
from __future__ import annotations

import json
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import shared.load.dispositions as dispositions
from shared.chain import Chain
from shared.chain.pump import drain
from shared.inbox.drops import IngestError, ingest_file
from shared.ledger import RunLedger
from shared.load.loader import Loader
from shared.pipeline import run_models
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from shared.target.columns import CURRENT, RUN_ID, VALID_FROM
from shared.target.dialects import create_target_engine, drop_schema
from shared.target.staging_names import is_staging
from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen, StubServer

PATH = "/admin/api/2024-01/orders.json"
Lines = list[tuple[str, int]]   # (sku, quantity) of an order's line items, in order


def order(number: int, lines: Lines) -> dict[str, Any]:
    """An order as https://shopify.dev/docs/api/admin-rest/2024-01/resources/order shows it, cut to
    `line_items` with their `tax_lines`."""
    return {"id": 450789469 + number, "name": f"#{1000 + number}",
            "line_items": [{"sku": sku, "quantity": quantity,
                            "tax_lines": [{"title": "State Tax", "rate": 0.06}]} for sku, quantity in lines]}


class Orders:
    """`GET /admin/api/2024-01/orders.json`: `{"orders": [...]}`, `limit` per page and the next page's
    `page_info` cursor in `Link: <...>; rel="next"` (https://shopify.dev/docs/api/admin-rest/usage/pagination)."""

    def __init__(self) -> None:
        self.lines: dict[int, Lines] = {}

    def __call__(self, seen: Seen) -> Reply:
        if seen.path != PATH:
            return Reply(status=404, body={"errors": "Not Found"})
        orders = [order(n, lines) for n, lines in sorted(self.lines.items())]
        query = {k: v[0] for k, v in seen.query.items()}
        limit, start = int(query.get("limit", 50)), int(query.get("page_info", "0"))
        end = min(start + limit, len(orders))
        headers = {"Link": f'<{PATH}?limit={limit}&page_info={end}>; rel="next"'} if end < len(orders) else {}
        return Reply(body={"orders": orders[start:end]}, headers=headers)


LINE_ITEMS = {"type": "table", "path": "line_items", "columns": {
    "sku": {"type": "string", "length": 40}, "quantity": {"type": "integer"},
    "tax_lines": {"type": "table", "columns": {"title": {"type": "string", "length": 40}, "rate": {"type": "float"}}}}}
BASE = {"path": PATH, "records": "orders", "params": {"limit": 2}, "primary_key": ["id"],
        "pagination": {"type": "link_header"},
        "columns": {"id": {"type": "bigint"}, "name": {"type": "string", "length": 20}, "lines": LINE_ITEMS}}
MODELS = {"versions": {**BASE, "history": "scd2"},
          "closing": {**BASE, "history": "scd2", "deletes": "soft"},
          "log": {**BASE, "write": "append"}}
FIRST = {1: [("A", 1), ("B", 1)], 2: [("C", 1), ("D", 2)], 3: [("E", 1), ("F", 1)]}


@pytest.fixture()
def api():
    orders = Orders()
    with StubServer(handler=orders) as server:
        yield orders, server.url("")


class Target:
    """The three models over the emulation, applied on `url` in a schema of their own."""

    def __init__(self, url: str, tmp_path: Path, base_url: str):
        self.schema, self.tmp_path, self.runs = f"kt_chist_{uuid.uuid4().hex[:8]}", tmp_path, 0
        self.project = project_for(
            tmp_path, {self.schema: {"type": "api", "base_url": base_url, "models": MODELS}},
            {"target_url": url, "storage": {"root": str(tmp_path / "storage")}})
        self.engine = create_target_engine(url, [self.schema])
        with self.engine.connect() as connection:
            plan = compute_plan(connection, self.project, PlanOptions(selectors=(self.schema,)))
        apply_stamped(self.engine, self.project, PlanStamp.of(plan))

    def run(self, mode: str) -> dict[str, dict[str, int]]:
        self.runs += 1
        folder = self.tmp_path / f"run-{self.runs}"
        if mode == "embedded":
            summary = run_models(self.project, self.project.models(), engine=self.engine,
                                 ledger=RunLedger(LocalBlobStore(folder / "ledger")))
            assert summary.ok, summary.render()
            return {r.model.split(".", 1)[1]: r.changes for r in summary.results}
        blobs, queues = LocalBlobStore(folder / "blobs"), LocalQueueStore(folder / "queues")

        def make() -> Chain:
            return Chain(self.project, blobs, queues, lambda: self.engine)

        with make() as chain:
            run_id = chain.start_run((), trigger="test")
        drain(make, queues, timeout=60)
        with make() as chain:
            status = chain.run_status(run_id)
        assert status["status"] == "succeeded", status
        outcomes = RunLedger(blobs).model_outcomes(run_id)
        return {m.split(".", 1)[1]: outcomes[m].get("changes", {}) for m in outcomes}

    def select(self, table: str, *columns: str) -> list[tuple]:
        with self.engine.connect() as connection:
            return [tuple(r) for r in connection.execute(
                sa.text(f"SELECT {', '.join(columns)} FROM {self.schema}.{table}"))]

    def kept(self, model: str, version: str) -> dict[int, list[tuple[Lines, bool]]]:
        """Per order, oldest first: each kept parent row's lines (from its child table, by `version`:
        its start or its run) and whether it is current (an appended row: always)."""
        lines: dict[tuple, list[tuple[int, str, int]]] = defaultdict(list)
        for number, kept, position, sku, quantity in self.select(
                f"{model}__lines", "id", version, "_kspyder_position", "sku", "quantity"):
            lines[(number, kept)].append((position, sku, quantity))
        versioned = version == VALID_FROM
        parents = self.select(model, "id", version, CURRENT if versioned else "_kspyder_loaded_at")
        out: dict[int, list[tuple[Lines, bool]]] = defaultdict(list)
        for number, kept, state in sorted(parents, key=lambda p: (p[0], str(p[1] if versioned else p[2]))):
            found = [(sku, quantity) for _, sku, quantity in sorted(lines.pop((number, kept), []))]
            out[number - 450789469].append((found, bool(state) if versioned else True))
        assert lines == {}, f"child rows without their parent row in {model}: {sorted(lines)}"
        return dict(out)

    def orphan_taxes(self, model: str, version: str) -> int:
        """Tax lines whose line item (same order, version and position) is missing."""
        with self.engine.connect() as connection:
            return connection.execute(sa.text(
                f"SELECT COUNT(*) FROM {self.schema}.{model}__lines__tax_lines t WHERE NOT EXISTS ("
                f"SELECT 1 FROM {self.schema}.{model}__lines l WHERE l.id = t.id AND l.{version} = t.{version} "
                f"AND l._kspyder_position = t._kspyder_position_lines)")).scalar_one()

    def staging_left(self) -> list[str]:
        return [t for t in sa.inspect(self.engine).get_table_names(schema=self.schema) if is_staging(t)]

    def close(self) -> None:
        with self.engine.begin() as connection:
            drop_schema(connection, self.schema)
        self.engine.dispose()


@pytest.fixture()
def target(url, tmp_path, api):
    made = Target(url, tmp_path, api[1])
    yield made
    made.close()


def test_plan_puts_the_parent_version_in_the_child_key(target):
    inspector = sa.inspect(target.engine)

    def key(table: str) -> list[str]:
        return inspector.get_pk_constraint(table, schema=target.schema)["constrained_columns"]

    assert key("versions__lines") == ["id", VALID_FROM, "_kspyder_position"]
    assert key("closing__lines__tax_lines") == ["id", VALID_FROM, "_kspyder_position_lines", "_kspyder_position"]
    assert key("log__lines") == ["id", RUN_ID, "_kspyder_position"]


@pytest.mark.parametrize("mode", ["embedded", "chain"])
def test_children_are_versioned_and_appended_with_their_parent_over_three_runs(target, api, mode):
    orders, _ = api
    orders.lines = dict(FIRST)
    first = target.run(mode)
    assert first["versions"] == {"opened": 3} and first["log"] == {"appended": 3}
    # a changed line (order 1), a removed line (order 2), a vanished order (3)
    orders.lines = {1: [("A", 5), ("B", 1)], 2: [("C", 1)]}
    second = target.run(mode)
    assert second["versions"] == {"opened": 2, "closed": 2}
    assert second["closing"] == {"opened": 2, "closed": 3}
    orders.lines = {**orders.lines, 3: FIRST[3]}   # order 3 comes back unchanged
    third = target.run(mode)
    assert third.get("versions", {}) == {}
    assert third["closing"] == {"opened": 1}
    assert target.kept("versions", VALID_FROM) == {
        1: [(FIRST[1], False), ([("A", 5), ("B", 1)], True)],
        2: [(FIRST[2], False), ([("C", 1)], True)],
        3: [(FIRST[3], True)]}
    assert target.kept("closing", VALID_FROM) == {
        1: [(FIRST[1], False), ([("A", 5), ("B", 1)], True)],
        2: [(FIRST[2], False), ([("C", 1)], True)],
        3: [(FIRST[3], False), (FIRST[3], True)]}   # its closed version keeps its lines
    assert target.kept("log", RUN_ID) == {
        1: [(FIRST[1], True), ([("A", 5), ("B", 1)], True), ([("A", 5), ("B", 1)], True)],
        2: [(FIRST[2], True), ([("C", 1)], True), ([("C", 1)], True)],
        3: [(FIRST[3], True), (FIRST[3], True)]}
    assert target.orphan_taxes("versions", VALID_FROM) == target.orphan_taxes("log", RUN_ID) == 0
    assert len(target.select("closing__lines__tax_lines", "id")) == 4 + 3 + 2 + 2
    assert target.staging_left() == []


def staged_loader(target: Target, model: str, run_id: str, lines: dict[int, Lines]) -> Loader:
    """A loader of `model` whose run staged parents and children, not yet ended."""
    [ref] = target.project.models([f"{target.schema}.{model}"])
    loader = Loader(target.engine, ref, redaction="[REDACTED]", run_id=run_id, batch_size=10)
    loader.check_drift()
    loader.stage()
    records = [order(n, found) for n, found in lines.items()]
    for record in records:   # shaped: the list under the column's name
        record["lines"] = record.pop("line_items")
    loader.load(records)
    return loader


def snapshot(target: Target) -> dict[str, list[tuple]]:
    tables = [t for t in sa.inspect(target.engine).get_table_names(schema=target.schema) if not is_staging(t)]
    return {table: sorted(target.select(table, "*"), key=repr) for table in tables}


def test_an_end_applied_twice_adds_nothing(target, api, monkeypatch):
    """The chain may deliver an end again after the first committed but before it dropped the
    staging tables: the second finds the versions and the run's rows there."""
    orders, _ = api
    orders.lines = dict(FIRST)
    target.run("embedded")
    changed = {1: [("A", 5), ("B", 1)], 2: [("C", 1)]}
    for model in MODELS:
        with monkeypatch.context() as patched:   # the first end dies before its drops
            patched.setattr(dispositions, "_drop", lambda *args: None)
            staged_loader(target, model, f"run-{model}", changed).finish()
        assert target.staging_left() != []
        before = snapshot(target)
        again = Loader(target.engine, target.project.models([f"{target.schema}.{model}"])[0],
                       redaction="[REDACTED]", run_id=f"run-{model}", batch_size=10)
        again.staged_elsewhere()
        assert again.finish().as_dict() == {}
        assert snapshot(target) == before
        assert target.staging_left() == []
    assert target.kept("versions", VALID_FROM)[1] == [(FIRST[1], False), (changed[1], True)]
    assert target.kept("log", RUN_ID)[2] == [(FIRST[2], True), (changed[2], True)]


def test_a_run_killed_before_its_end_leaves_parents_and_children_as_they_were(target, api):
    orders, _ = api
    orders.lines = dict(FIRST)
    target.run("embedded")
    before = snapshot(target)
    for model in MODELS:   # staged rows and children, then the process died: no end
        staged_loader(target, model, "killed-run", {1: [("Z", 9)], 4: [("Y", 1)]})
    assert snapshot(target) == before
    target.run("embedded")   # the rerun drops the killed run's staging tables and loads as usual
    assert target.staging_left() == []
    assert target.kept("versions", VALID_FROM) == {n: [(lines, True)] for n, lines in FIRST.items()}
    assert len(target.select("log__lines", "id")) == 12


def test_a_dropped_json_file_opens_versions_and_appends_with_children(target, api):
    orders, _ = api
    orders.lines = dict(FIRST)
    target.run("embedded")
    ledger = RunLedger(LocalBlobStore(target.tmp_path / "inbox-ledger"))
    data = json.dumps({"orders": [order(1, [("A", 7)])]}).encode()
    for model, changes in (("versions", {"opened": 1, "closed": 1}), ("log", {"appended": 1})):
        result = ingest_file(target.project, target.schema, model, "changed.json", data, target.engine, ledger)
        assert result.as_dict()["changes"] == changes
    assert target.kept("versions", VALID_FROM)[1] == [(FIRST[1], False), ([("A", 7)], True)]
    assert target.kept("log", RUN_ID)[1] == [(FIRST[1], True), ([("A", 7)], True)]
    assert target.orphan_taxes("versions", VALID_FROM) == 0
    csv = b"id,name\n450789470,#1001\n"   # no lists: every row would open a version without its lines
    with pytest.raises(IngestError, match=r"keeps each version with its child tables .* not CSV"):
        ingest_file(target.project, target.schema, "versions", "names.csv", csv, target.engine, ledger)
    assert ingest_file(target.project, target.schema, "log", "names.csv", csv, target.engine, ledger).rows == 1
    assert target.kept("log", RUN_ID)[1][-1] == ([], True)   # an appended row with no lines


@pytest.mark.parametrize("switch", [{"history": "scd2"}, {"write": "append"}])
def test_switching_a_model_with_children_replaces_its_child_tables_in_the_plan(url, tmp_path, api, switch):
    """The version's column joins every child table's key: `plan` replaces them, and the next run
    refills parent and children."""
    orders, base_url = api
    orders.lines = dict(FIRST)
    schema = f"kt_chsw_{uuid.uuid4().hex[:8]}"
    settings = {"target_url": url, "storage": {"root": str(tmp_path / "storage")}}
    merged = project_for(tmp_path, {schema: {"type": "api", "base_url": base_url, "models": {"orders": BASE}}},
                         settings)
    engine = create_target_engine(url, [schema])
    try:
        with engine.connect() as connection:
            first = compute_plan(connection, merged, PlanOptions(selectors=(schema,)))
        apply_stamped(engine, merged, PlanStamp.of(first))
        switched = project_for(tmp_path, {schema: {"type": "api", "base_url": base_url,
                                                   "models": {"orders": {**BASE, **switch}}}}, settings)
        with engine.connect() as connection:
            plan = compute_plan(connection, switched, PlanOptions(selectors=(schema,)))
        version = VALID_FROM if "history" in switch else RUN_ID
        changes = {c.table_name: c for c in plan.changes}
        assert {changes[t].kind for t in ("orders", "orders__lines", "orders__lines__tax_lines")} == {"replace_table"}
        assert changes["orders__lines"].key_change == (("id", "_kspyder_position"),
                                                       ("id", version, "_kspyder_position"))
        apply_stamped(engine, switched, PlanStamp.of(plan))
        summary = run_models(switched, switched.models(), engine=engine,
                             ledger=RunLedger(LocalBlobStore(tmp_path / "ledger")))
        assert summary.ok, summary.render()
        with engine.connect() as connection:
            assert connection.execute(sa.text(f"SELECT COUNT(*) FROM {schema}.orders__lines")).scalar_one() == 6
    finally:
        with engine.begin() as connection:
            drop_schema(connection, schema)
        engine.dispose()
