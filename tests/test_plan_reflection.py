"""The plan reflects a schema's tables in one pass (`compare.reflect_tables`): on PostgreSQL the
queries of a plan do not grow with the number of tables, and the result is the same plan."""
from __future__ import annotations

import sqlalchemy as sa

from shared.config.project import load_project
from shared.schema.plan import PlanOptions, compute_plan
from shared.target.compare import compare_table, table_reflection
from shared.target.dialects import create_target_engine
from shared.target.tables import desired_columns
from tests.flow_helpers import TEST_KEY
from tests.test_plan_apply import PRODUCTS, Target, model


def plan_queries(target: Target) -> tuple[int, tuple]:
    """(statements the plan of the target's project sent, its changes)."""
    project = load_project(target.tmp_path / "manifests", env={"KSPYDER_PII_KEY": TEST_KEY})
    engine = create_target_engine(target.url)
    sent: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    try:
        with engine.connect() as connection:
            plan = compute_plan(connection, project, PlanOptions(selectors=(target("shop"),)))
    finally:
        engine.dispose()
    return len(sent), plan.changes


def test_the_plan_of_five_tables_sends_the_queries_of_one(postgres_url, tmp_path):
    one, five = Target(postgres_url, "kt_reflect_1_", tmp_path / "one"), Target(postgres_url, "kt_reflect_5_",
                                                                                   tmp_path / "five")
    for target, count in ((one, 1), (five, 5)):
        (target.tmp_path).mkdir()
        target.drop_all()
        target.manifests({"shop": {f"products_{i}": model(PRODUCTS) for i in range(count)}})
        assert target.apply().exit_code == 0
    try:
        (sent_one, changes_one), (sent_five, changes_five) = plan_queries(one), plan_queries(five)
        assert changes_one == changes_five == ()
        assert sent_five == sent_one
    finally:
        one.drop_all()
        five.drop_all()


def test_a_table_the_pass_did_not_cover_is_reflected_on_its_own(postgres_url, tmp_path):
    """The loader's drift check uses an inspector of its own: its table is reflected alone, the same."""
    target = Target(postgres_url, "kt_reflect_own_", tmp_path)
    target.drop_all()
    target.manifests({"shop": {"products": model(PRODUCTS)}})
    assert target.apply().exit_code == 0
    project = load_project(tmp_path / "manifests", env={"KSPYDER_PII_KEY": TEST_KEY})
    [ref] = project.models()
    engine = create_target_engine(postgres_url)
    try:
        with engine.connect() as connection:
            alone = table_reflection(sa.inspect(connection), target("shop"), "products")
            diff = compare_table(sa.inspect(connection), target("shop"), "products", desired_columns(ref, "[REDACTED]"))
        assert [c["name"] for c in alone[0]][:3] == ["id", "name", "colour"] and alone[1] == ["id"]
        assert diff.matches
    finally:
        engine.dispose()
        target.drop_all()
