"""Pipelines against real databases (SQLite, PostgreSQL, MariaDB): inputs read from model tables,
outputs replaced, dependency order, failures isolated, chunked == whole-frame."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from shared.target.columns import RUN_ID
from shared.transform.runner import run_affected
from tests.helpers.transform import PIPELINES, Target


def test_pipelines_build_their_outputs_in_dependency_order(target):
    target.apply()
    target.insert()
    summary = target.run()
    assert summary.ok, summary.render()
    names = [r.name for r in summary.results]
    assert names.index("monthly_revenue") < names.index("city_totals")   # city_totals reads monthly_revenue
    assert target.rows("monthly_revenue", "month") == [
        {"month": "2024-01", "city": "Berlin", "revenue": 30.5, "orders": 2},
        {"month": "2024-01", "city": "Paris", "revenue": 5.25, "orders": 1},
        {"month": "2024-02", "city": None, "revenue": 10.0, "orders": 3},
        {"month": "2024-03", "city": "Paris", "revenue": 100.0, "orders": 1}]
    assert target.rows("city_totals", "revenue") == [
        {"city": None, "revenue": 10.0, "months": 1}, {"city": "Berlin", "revenue": 30.5, "months": 1},
        {"city": "Paris", "revenue": 105.25, "months": 2}]
    paid = target.rows("paid_orders", "order_id")
    assert [(r["order_id"], r["cents"], bool(r["big"])) for r in paid] == [
        ("o1", 1050, True), ("o2", 2000, True), ("o5", 700, False), ("o7", 200, False)]
    assert paid[0]["paid_at"].replace(tzinfo=None) == datetime(2024, 1, 5)
    assert target.rows("statuses", "status") == [
        {"status": s, "n": n} for s, n in [("cancelled", 1), ("new", 1), ("paid", 4), ("refunded", 1), ("shipped", 1)]]
    # the outputs are what plan inferred: nothing to change
    assert target.plan().changes == ()


def test_a_second_run_sees_new_data_through_the_chain_and_tags_the_run(target):
    target.apply()
    target.insert()
    target.run(run_id="first-run")
    target.insert(orders=[("o9", 1, "69.50", "paid", (2024, 3, 2))], customers=[])
    summary = target.run(run_id="second-run")
    assert summary.ok
    totals = {r["city"]: r["revenue"] for r in target.rows("city_totals", "revenue")}
    assert totals["Berlin"] == 100.0
    with target.engine.connect() as connection:
        runs = connection.execute(sa.text(f"SELECT DISTINCT {RUN_ID} FROM {target.out}.city_totals")).scalars().all()
    assert runs == ["second-run"]


def test_affected_pipelines_follow_the_sources(target):
    target.apply()
    target.insert()
    summary = run_affected(target.project, [target.shop], engine=target.engine, run_id="shop-loaded")
    assert [r.name for r in summary.results] == ["monthly_revenue", "city_totals"]
    assert summary.ok


def test_a_failing_pipeline_keeps_its_old_output_and_skips_its_readers(target):
    target.apply()
    target.insert()
    assert target.run().ok
    before = target.rows("monthly_revenue", "month")
    broken = PIPELINES.replace('      - filter: "amount > 0"\n', '      - filter: "amount > 0"\n      - cast: '
                                                                 '{{status: integer}}\n')
    target.write(broken)
    summary = target.run()
    results = {r.name: r for r in summary.results}
    assert not summary.ok
    message = "steps[2].cast.status: column 'status': some values are not valid integer"
    assert message in results["monthly_revenue"].error
    assert results["city_totals"].skipped
    assert results["city_totals"].error == "its input pipeline monthly_revenue failed"
    assert results["paid_orders"].error is None and results["statuses"].error is None
    assert target.rows("monthly_revenue", "month") == before
    rendered = summary.render()
    assert "monthly_revenue: FAILED: transformations.yml:" in rendered and "2 failed" not in rendered
    with pytest.raises(Exception, match="1 of 4 pipelines failed, 1 skipped:"):
        summary.check()


def test_missing_input_table_is_a_clear_failure(target):
    summary = target.run(["paid_orders"])
    [result] = summary.results
    assert result.error == (f"input {target.erp}.orders does not exist in the target (load it first: main.py apply, "
                            f"main.py run; or run the pipeline that writes it)")


def test_chunked_equals_whole_frame(target):
    target.apply()
    rng = random.Random(5)
    start = datetime(2024, 1, 1)
    orders = [(f"r{i:04d}", rng.choice([1, 2, 3, None]), f"{rng.randint(-500, 50000) / 100:.2f}",
               rng.choice(["paid", "new", "paid", "cancelled"]), (start + timedelta(hours=i * 7)).timetuple()[:6])
              for i in range(500)]
    target.insert(orders=orders)
    chunked = target.run(["paid_orders"], chunk_rows=37)
    assert chunked.results[0].chunks == 14   # 500 rows / 37
    rows_chunked = target.rows("paid_orders", "order_id")
    whole = target.run(["paid_orders"], chunk_rows=0)
    assert whole.results[0].chunks == 0
    assert target.rows("paid_orders", "order_id") == rows_chunked
    assert len(rows_chunked) == sum(1 for o in orders if o[3] == "paid") > 100


def _with_query(target, pipeline: str, query: str) -> None:
    """Put `query` into the pipeline's first (sql) step past validation, as a hand-built pipeline could."""
    at = target.transformations.pipelines[pipeline].steps[0]
    at.step.args = at.step.args.model_copy(update={"query": query})


def test_a_sql_step_that_writes_never_runs_and_leaves_nothing(target):
    target.apply()
    target.insert()
    _with_query(target, "statuses", f"CREATE TABLE {target.out}.leak AS SELECT status FROM {target.erp}.orders")
    summary = target.run(["statuses"])
    [result] = summary.results
    assert result.error == "sql step not run: query must be a SELECT (or WITH ... SELECT), not CREATE"
    with target.engine.connect() as connection:
        assert not sa.inspect(connection).has_table("leak", schema=target.out)


def test_a_sql_step_reads_in_a_read_only_transaction(postgres_url, tmp_path):
    target = Target(postgres_url, tmp_path)
    try:
        target.apply()
        target.insert()
        with target.engine.begin() as connection:
            connection.execute(sa.text(f"CREATE SEQUENCE {target.erp}.counter"))
        # a SELECT the parser accepts, calling a function that writes: the transaction refuses it
        _with_query(target, "statuses", f"SELECT status, nextval('{target.erp}.counter') AS n FROM {target.erp}.orders")
        [result] = target.run(["statuses"]).results
        assert "read-only transaction" in result.error
        with target.engine.connect() as connection:
            assert connection.execute(sa.text(f"SELECT last_value FROM {target.erp}.counter")).scalar() == 1
    finally:
        with target.engine.begin() as connection:
            connection.execute(sa.text(f"DROP SEQUENCE IF EXISTS {target.erp}.counter"))
        target.drop()
