"""The Transform queue function: a TransformEvent runs the pipelines reading its sources."""
from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa
from azure.functions.queue import QueueMessage

from functions import transform as transform_module
from shared.chain.messages import MessageError, RunModel, TransformEvent, encode
from shared.target.columns import RUN_ID
from shared.transform.runner import TransformError
from tests.helpers.flow import with_sources
from tests.helpers.transform import PIPELINES, Target


def message(event) -> QueueMessage:
    return QueueMessage(id="m1", body=json.dumps(encode(event)).encode(), dequeue_count=1, pop_receipt="r")


@pytest.fixture
def target(tmp_path, monkeypatch):
    t = Target(f"sqlite:///{tmp_path / 'target.db'}", tmp_path)
    with_sources(tmp_path)   # the routes check the SQL sources' tables before planning
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path))
    monkeypatch.setenv("KSPYDER_TARGET_URL", t.url)
    monkeypatch.setenv("KSPYDER_STATE_DIR", str(tmp_path / "state"))   # the run ledger, out of the checkout
    t.apply()
    t.insert()
    yield t
    t.drop()


def output_runs(target, table: str) -> list[str]:
    with target.engine.connect() as connection:
        if not sa.inspect(connection).has_table(table, schema=target.out):
            return []
        return connection.execute(sa.text(f"SELECT DISTINCT {RUN_ID} FROM {target.out}.{table}")).scalars().all()


def test_an_event_runs_the_pipelines_reading_its_sources(target, caplog):
    with caplog.at_level(logging.INFO, logger="kspyder.functions"):
        transform_module.transform(message(TransformEvent("run-shop", (target.shop,), (f"{target.shop}.customers",))))
    assert output_runs(target, "monthly_revenue") == ["run-shop"]
    assert output_runs(target, "city_totals") == ["run-shop"]         # through monthly_revenue's output
    assert output_runs(target, "paid_orders") == []                    # reads erp only: not run (left empty by apply)
    assert f"run run-shop loaded (sources {target.shop}): transform run-shop: 2 pipelines" in caplog.text
    transform_module.transform(message(TransformEvent("run-erp", (target.erp,))))
    assert output_runs(target, "paid_orders") == ["run-erp"] and output_runs(target, "statuses") == ["run-erp"]


def test_a_failing_pipeline_fails_the_message_after_the_others_ran(target):
    target.write(PIPELINES.replace('      - filter: "status == \'paid\'"\n',
                                   '      - filter: "status == \'paid\'"\n      - cast: {{status: integer}}\n'))
    with pytest.raises(TransformError, match="1 of 4 pipelines failed:\n  paid_orders: FAILED: transformations.yml:"):
        transform_module.transform(message(TransformEvent("run-bad", (target.erp,))))
    assert output_runs(target, "monthly_revenue") == ["run-bad"]


def test_a_wrong_message_is_refused():
    with pytest.raises(MessageError, match="expected a TransformEvent, not a RunModel"):
        transform_module.transform(message(RunModel("r1", "shop.customers")))


def test_after_load_is_the_list_later_steps_join(target, monkeypatch):
    calls = []
    monkeypatch.setattr(transform_module, "AFTER_LOAD",
                        transform_module.AFTER_LOAD + (lambda project, event: calls.append(event.run_id),))
    transform_module.transform(message(TransformEvent("run-x", (target.erp,))))
    assert calls == ["run-x"]


def test_schema_routes_report_a_broken_transformations_file(tmp_path, monkeypatch):
    import azure.functions as func

    from functions.common import dispose_engines
    from functions.schema_routes import schema_apply, schema_plan
    t = Target(f"sqlite:///{tmp_path / 'target.db'}", tmp_path)
    with_sources(tmp_path)   # the routes check the SQL sources' tables before planning
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path))
    monkeypatch.setenv("KSPYDER_TARGET_URL", t.url)
    monkeypatch.setenv("KSPYDER_STATE_DIR", str(tmp_path / "state"))   # the run ledger, out of the checkout
    response = schema_plan(func.HttpRequest("GET", "http://localhost/api/schema/plan", body=b""))
    assert response.status_code == 200
    assert any(c.get("builder") == "transform paid_orders" for c in json.loads(response.get_body())["changes"])
    (tmp_path / "transformations.yml").write_text("pipelines:\n  x:\n    steps: [{fliter: a}]\n    output: a.b\n")
    dispose_engines()
    try:
        for response in (schema_plan(func.HttpRequest("GET", "http://localhost/api/schema/plan", body=b"")),
                         schema_apply(func.HttpRequest("POST", "http://localhost/api/schema/apply",
                                                       body=json.dumps({"plan_hash": "0" * 64}).encode()))):
            body = json.loads(response.get_body())
            assert response.status_code == 500 and body["error"] == "invalid manifests"
            assert body["problems"] == ["transformations.yml:3 pipelines.x.steps[0].fliter: unknown step 'fliter' "
                                        "(did you mean 'filter'?); expected one of: cast, dedupe, derive, fillna, "
                                        "filter, group_by, join, limit, pivot, rename, select, sort, sql, union, "
                                        "unpivot"]
    finally:
        dispose_engines()
        t.drop()
