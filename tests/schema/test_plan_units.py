"""Plan rendering, fingerprints and plan files, without a database."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.config.models import ColumnType
from shared.schema.apply import PlanStamp
from shared.schema.plan import (
    ADD_COLUMN,
    CREATE_TABLE,
    DROP_COLUMN,
    DROP_SCHEMA,
    DROP_TABLE,
    REPLACE_TABLE,
    Change,
    Kept,
    Plan,
    PlanError,
    PlanOptions,
    shapes_after,
)
from shared.schema.plan_file import load_plan, mask_url, plan_document, save_plan
from shared.schema.plan_render import render_applied, render_change, render_kept, render_plan
from shared.schema.snapshot import TableShape, fingerprint
from shared.target.columns import LOADED_AT, RUN_ID, StoredColumn

ID = StoredColumn("id", ColumnType.integer, primary_key=True)
META = (StoredColumn(RUN_ID, ColumnType.string, 36), StoredColumn(LOADED_AT, ColumnType.datetime))
WEIGHT = StoredColumn("weight", ColumnType.float)
DEFAULT_OPTIONS = PlanOptions()


def make_plan(changes, kept=(), options=DEFAULT_OPTIONS) -> Plan:
    return Plan(options, tuple(changes), tuple(kept), ("shop.products",), "f" * 64, "e" * 64)


@pytest.mark.parametrize("change, line", [
    (Change(CREATE_TABLE, "shop", "orders", columns=(ID, StoredColumn("line", ColumnType.integer, primary_key=True))
            + META), "+ create table shop.orders (2 columns, key (id, line))"),
    (Change(CREATE_TABLE, "shop", "log", columns=(StoredColumn("at", ColumnType.datetime),) + META),
     "+ create table shop.log (1 column, no key)"),
    (Change(ADD_COLUMN, "shop", "products", "weight", columns=(WEIGHT,)), "~ add column shop.products.weight FLOAT"),
    (Change(DROP_COLUMN, "shop", "products", "colour"), "~ drop column shop.products.colour"),
    (Change(REPLACE_TABLE, "erp", "orders", reasons=("type of amount changes DECIMAL(12,2) -> TEXT",)),
     "-/+ replace table erp.orders (reason: type of amount changes DECIMAL(12,2) -> TEXT)"),
    (Change(DROP_TABLE, "shop", "legacy"), "- drop table shop.legacy"),
    (Change(DROP_SCHEMA, "old", tables=("a",)), "- drop schema old (1 table: a)"),
])
def test_each_change_is_one_line(change, line):
    assert render_change(change) == line


def test_kept_lines_and_summaries():
    line = render_kept(Kept("shop", "legacy"))
    assert line == "shop.legacy is no longer in the manifests (kept; use --prune to drop it)"
    assert render_kept(Kept("old")) == "schema old is no longer in the manifests (kept; use --prune to drop it)"
    assert render_plan(make_plan([])) == "No changes. The target matches the manifests."
    assert render_plan(make_plan([], [Kept("old")])).splitlines()[-1].startswith("No changes.")
    drop = Change(DROP_TABLE, "shop", "legacy")
    assert render_plan(make_plan([drop])).splitlines()[-1] == "Plan: 0 to create, 0 to change, 0 to replace, 1 to drop."
    assert render_applied((drop,)) == "Apply complete: 0 created, 0 changed, 0 replaced, 1 dropped."


def test_fingerprint_ignores_order_but_not_types_or_keys():
    a = TableShape((("id", "INTEGER"), ("name", "STRING(50)")), ("id",))
    b = TableShape((("id", "INTEGER"), ("name", "STRING(60)")), ("id",))
    assert fingerprint({"s": {"t": a, "u": b}}) == fingerprint({"s": {"u": b, "t": a}})
    assert fingerprint({"s": {"t": a}}) != fingerprint({"s": {"t": b}})
    assert fingerprint({"s": {"t": a}}) != fingerprint({"s": {"t": TableShape(a.columns, ())}})
    assert fingerprint({"s": {"t": a}, "empty": {}}) == fingerprint({"s": {"t": a}})


def test_shapes_after_predicts_the_applied_schema():
    live = {"shop": {"products": TableShape.of((ID, StoredColumn("colour", ColumnType.text)) + META),
                     "legacy": TableShape.of((ID,) + META)},
            "old": {"a": TableShape.of((ID,) + META)}}
    after = shapes_after(live, [Change(ADD_COLUMN, "shop", "products", "weight", columns=(WEIGHT,)),
                                Change(DROP_COLUMN, "shop", "products", "colour"),
                                Change(DROP_TABLE, "shop", "legacy"), Change(DROP_SCHEMA, "old", tables=("a",))])
    assert after == {"shop": {"products": TableShape.of((ID, WEIGHT) + META)}, "old": {}}
    assert live["shop"]["legacy"]  # the live shapes are not modified


def test_plan_hash_covers_the_changes_only():
    drop = Change(DROP_TABLE, "shop", "legacy")
    assert make_plan([drop]).plan_hash == make_plan([drop], [Kept("old")]).plan_hash
    assert make_plan([drop]).plan_hash != make_plan([Change(DROP_TABLE, "shop", "other")]).plan_hash


def test_plan_file_round_trip_masks_the_password(tmp_path: Path):
    class FakeProject:
        root = Path("manifests")
    plan = make_plan([Change(ADD_COLUMN, "shop", "products", "weight", columns=(WEIGHT,))],
                     options=PlanOptions(prune=True, scope=("kt_*",)))
    document = plan_document(plan, "postgresql+psycopg://kspyder:s3cret@db:5432/target", FakeProject())
    save_plan(tmp_path / "plan.json", document)
    text = (tmp_path / "plan.json").read_text()
    assert "s3cret" not in text and json.loads(text)["target"] == "postgresql+psycopg://kspyder:***@db:5432/target"
    assert json.loads(text)["changes"] == [{"kind": "add_column", "schema": "shop", "table": "products",
                                           "column": "weight", "type": "FLOAT"}]
    saved = load_plan(tmp_path / "plan.json")
    assert saved.stamp == PlanStamp.of(plan)
    assert saved.target == mask_url("postgresql+psycopg://kspyder:other@db:5432/target")


def test_a_file_that_is_not_a_plan_is_refused(tmp_path: Path):
    (tmp_path / "plan.json").write_text('{"hello": 1}')
    with pytest.raises(PlanError, match="is not a readable kspyder plan"):
        load_plan(tmp_path / "plan.json")
