"""Pipeline outputs in plan/apply: created with their inferred columns, replaced when a pipeline's
columns change, kept or pruned when a pipeline goes, never mistaken for a removed source; and the
`transform` command (dry run, errors, runs)."""
from __future__ import annotations

import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from shared.schema.plan import CREATE_TABLE, DROP_TABLE, REPLACE_TABLE, PlanOptions, compute_plan
from shared.schema.plan_render import render_plan
from tests.helpers.flow import with_sources
from tests.helpers.transform import PIPELINES, Target


def test_plan_shows_outputs_with_inferred_columns_and_apply_creates_them(target):
    plan = target.plan()
    created = {c.qualified: c for c in plan.changes if c.kind == CREATE_TABLE and c.builder}
    assert set(created) == {f"{target.out}.{t}" for t in ("monthly_revenue", "city_totals", "paid_orders", "statuses")}
    text = render_plan(plan)
    assert (f"+ create table {target.out}.monthly_revenue (transform monthly_revenue: month TEXT, city TEXT, "
            f"revenue FLOAT, orders BIGINT)") in text
    assert f"+ create schema {target.out}" in text
    assert set(plan.rebuild_derived) == {f"transform {p}" for p in ("monthly_revenue", "city_totals", "paid_orders",
                                                                     "statuses")}
    assert f"Rebuild after apply: {', '.join(plan.rebuild_derived)}." in text
    assert f"{target.out}.monthly_revenue" not in plan.reextract
    target.apply()
    assert target.plan().changes == ()
    with target.engine.connect() as connection:
        assert sa.inspect(connection).has_table("paid_orders", schema=target.out)


def test_a_changed_pipeline_replaces_its_output_and_a_removed_one_is_kept_or_pruned(target):
    target.apply()
    target.insert()
    assert target.run().ok
    changed = PIPELINES.replace('derive: {{cents: "round(amount * 100)", big: "amount >= 10"}}',
                                'derive: {{cents: "round(amount * 100)", big: "amount * 2"}}')
    changed = changed.replace("      - select: [order_id, customer_id, cents, big, paid_at]\n",
                              "      - select: [order_id, cents, big, paid_at]\n")
    changed = changed[:changed.index("  statuses:")]   # statuses removed
    target.write(changed)
    plan = target.plan()
    [replace] = [c for c in plan.changes if c.kind == REPLACE_TABLE]
    assert replace.qualified == f"{target.out}.paid_orders"
    assert replace.reasons == ("column customer_id is gone", "type of big changes BOOLEAN -> FLOAT")
    text = render_plan(plan)
    assert (f"-/+ replace table {target.out}.paid_orders (reason: column customer_id is gone; type of big changes "
            "BOOLEAN -> FLOAT; transform paid_orders: order_id TEXT, cents BIGINT, big FLOAT, paid_at "
            "DATETIME)") in text
    assert f"{target.out}.statuses is no longer in the manifests (kept; use --prune to drop it)" in text
    pruned = target.plan(prune=True)
    assert [c.qualified for c in pruned.changes if c.kind == DROP_TABLE] == [f"{target.out}.statuses"]
    # running the changed pipeline rebuilds the table in its new shape: nothing left to plan but the kept one
    assert target.run(["paid_orders"]).ok
    assert [c.kind for c in target.plan().changes] == []


def test_outputs_are_not_a_removed_source(target):
    target.apply()
    target.write("pipelines: {{}}\n")
    plan = target.plan()
    assert plan.changes == ()
    assert [k.schema for k in plan.kept] == [target.out]   # a schema of kspyder tables nobody declares: kept


def test_selectors_leave_outputs_out_of_the_plan(target):
    with target.engine.connect() as connection:
        plan = compute_plan(connection, target.project, PlanOptions(selectors=(target.erp,)))
    assert {c.schema for c in plan.changes} == {target.erp}


def cli_run(target, *args):
    with_sources(target.folder)
    env = {"KSPYDER_TARGET_URL": target.url, "KSPYDER_STATE_DIR": str(target.folder / "state")}
    return CliRunner().invoke(cli, ["--manifests", str(target.folder), *args], env=env, catch_exceptions=False)


def test_transform_command_dry_run_run_and_errors(target):
    result = cli_run(target, "transform", "--dry-run", "paid_orders")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"pipeline paid_orders -> {target.out}.paid_orders (chunk-safe: read in chunks)",
        f"  input o = {target.erp}.orders: order_id STRING(20), customer_id INTEGER, amount DECIMAL(12,2), "
        "status STRING(20), created_at DATETIME",
        "  step 1 (filter): order_id TEXT, customer_id BIGINT, amount FLOAT, status TEXT, created_at DATETIME",
        "  step 2 (fillna): order_id TEXT, customer_id BIGINT, amount FLOAT, status TEXT, created_at DATETIME",
        "  step 3 (derive): order_id TEXT, customer_id BIGINT, amount FLOAT, status TEXT, created_at DATETIME, "
        "cents FLOAT, big BOOLEAN",
        "  step 4 (cast): order_id TEXT, customer_id BIGINT, amount FLOAT, status TEXT, created_at DATETIME, "
        "cents BIGINT, big BOOLEAN",
        "  step 5 (rename): order_id TEXT, customer_id BIGINT, amount FLOAT, status TEXT, paid_at DATETIME, "
        "cents BIGINT, big BOOLEAN",
        "  step 6 (select): order_id TEXT, customer_id BIGINT, cents BIGINT, big BOOLEAN, paid_at DATETIME",
        f"  output {target.out}.paid_orders: order_id TEXT, customer_id BIGINT, cents BIGINT, big BOOLEAN, paid_at "
        "DATETIME"]
    with target.engine.connect() as connection:
        assert not sa.inspect(connection).has_table("paid_orders", schema=target.out)   # a dry run writes nothing

    result = cli_run(target, "transform", "nope")
    assert result.exit_code == 1 and "unknown pipeline 'nope' (pipelines: " in result.stderr

    result = cli_run(target, "transform", "paid_orders")
    assert result.exit_code == 1 and f"paid_orders: FAILED: input {target.erp}.orders does not exist" in result.stderr

    result = cli_run(target, "apply", "--auto-approve", "--scope", target.options.scope[0])
    assert result.exit_code == 0, result.stderr
    assert "Rebuild: transform " in result.stdout
    target.insert()
    result = cli_run(target, "transform")
    assert result.exit_code == 0, result.stderr
    assert "4 pipelines" in result.stderr and f"paid_orders: 4 rows -> {target.out}.paid_orders" in result.stderr


def test_broken_transformations_stop_plan_with_every_message(target):
    (target.folder / "transformations.yml").write_text(
        "pipelines:\n  x:\n    inputs: {o: nowhere.t}\n    steps: [{fliter: a}]\n    output: a.b\n")
    result = cli_run(target, "plan")
    assert result.exit_code == 1
    assert "1 problem in the manifests:" in result.stderr
    assert "transformations.yml:4 pipelines.x.steps[0].fliter: unknown step 'fliter'" in result.stderr


def test_a_pending_output_does_not_stop_loading(tmp_path):
    source = tmp_path / "source.db"
    engine = sa.create_engine(f"sqlite:///{source}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE orders (order_id TEXT PRIMARY KEY, customer_id INTEGER, amount "
                                   "NUMERIC, "
                                   "status TEXT, created_at TIMESTAMP)")
        connection.exec_driver_sql("INSERT INTO orders VALUES ('o1', 1, 10.5, 'paid', '2024-01-05 10:00:00')")
        connection.exec_driver_sql("CREATE TABLE customers (id INTEGER PRIMARY KEY, city TEXT)")
    engine.dispose()
    t = Target(f"sqlite:///{tmp_path / 'target.db'}", tmp_path)
    connectors = (tmp_path / "connector_models.yml").read_text().replace("sqlite:///unused.db", f"sqlite:///{source}")
    try:
        (tmp_path / "connector_models.yml").write_text(connectors)
        assert cli_run(t, "apply", "--auto-approve").exit_code == 0
        with open(tmp_path / "transformations.yml", "a") as pipelines:
            pipelines.write(f"  later:\n    inputs: {{o: {t.erp}.orders}}\n    steps: [{{limit: 1}}]\n"
                            f"    output: {t.out}.later\n")
        result = cli_run(t, "plan")
        assert result.exit_code == 2 and f"+ create table {t.out}.later (transform later: " in result.stdout
        result = cli_run(t, "run")   # the whole project: its plan includes the pending output
        assert result.exit_code == 0, result.stderr
        assert "does not match" not in result.stderr
        result = cli_run(t, "transform", "later")
        assert result.exit_code == 0 and f"later: 1 row -> {t.out}.later" in result.stderr
    finally:
        t.drop()


def test_a_saved_plan_with_outputs_applies(target, tmp_path):
    saved = tmp_path / "plan.json"
    scope = target.options.scope[0]
    result = cli_run(target, "plan", "--scope", scope, "--out", str(saved))
    assert result.exit_code == 2
    document = saved.read_text()
    assert '"builder": "transform monthly_revenue"' in document
    result = cli_run(target, "apply", str(saved))
    assert result.exit_code == 0, result.stderr
    assert f"+ create table {target.out}.monthly_revenue (transform monthly_revenue: " in result.stdout
    assert target.plan().changes == ()
