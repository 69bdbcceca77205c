"""Keyless models are replaced atomically: a run fills its staging table out of readers' sight and
swaps it in at its end, on SQLite, PostgreSQL and MariaDB. The table keeps its definition (plan
says "No changes"), a failed or killed run leaves the previous table as it was, staging tables of
killed runs are dropped by the next run and never seen by plan, and a swap done twice (a redelivered
message of the queue chain) is a no-op."""
from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa

from shared.config.models import MAX_IDENTIFIER
from shared.load.loader import Loader, LoadError
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.target.columns import RUN_ID
from shared.target.dialects import create_target_engine, drop_schema
from shared.target.staging_names import is_staging, staging_name, stale_staging
from tests.helpers.flow import project_for

REDACTION = "[REDACTED]"
COLUMNS = {"event": {"type": "string", "length": 20}, "n": {"type": "integer"}, "data": {"type": "json"}}


@pytest.fixture()
def target(url, tmp_path):
    """A project with one keyless model (and a keyed one), its tables applied; dropped at teardown."""
    schema = f"kt_swap_{uuid.uuid4().hex[:8]}"
    models = {"log": {"path": "/log", "columns": COLUMNS},
              "items": {"path": "/items", "primary_key": ["n"], "columns": COLUMNS}}
    project = project_for(tmp_path, {schema: {"type": "api", "base_url": "http://127.0.0.1:1", "models": models}},
                          {"target_url": url, "storage": {"root": str(tmp_path / "storage")}})
    engine = create_target_engine(url, [schema])
    options = PlanOptions(selectors=(schema,))   # other tests' schemas on the server are not this plan's
    with engine.connect() as connection:
        plan = compute_plan(connection, project, options)
    apply_stamped(engine, project, PlanStamp.of(plan))
    yield project, engine, schema
    with engine.begin() as connection:
        drop_schema(connection, schema)
    engine.dispose()


def ref_of(project, name="log"):
    [ref] = project.models([f"{next(iter(project.sources))}.{name}"])
    return ref


def records(tag: str, count: int) -> list[dict]:
    return [{"event": f"{tag}{i}", "n": i, "data": {"i": i}} for i in range(count)]


def loaded(engine, schema) -> list[tuple]:
    with engine.connect() as connection:
        return sorted(connection.execute(sa.text(f"SELECT event, {RUN_ID} FROM {schema}.log")).all())


def tables(engine, schema) -> list[str]:
    """The models' tables and staging tables (kspyder's own bookkeeping tables left out)."""
    return sorted(t for t in sa.inspect(engine).get_table_names(schema=schema)
                  if t in ("items", "log") or is_staging(t))


def run(engine, ref, run_id: str, pages: list[list[dict]], finish: bool = True) -> Loader:
    loader = Loader(engine, ref, redaction=REDACTION, run_id=run_id, batch_size=7)
    loader.check_drift()
    loader.stage()
    for page in pages:
        loader.load(page)
    if finish:
        loader.finish()
    return loader


def no_changes(engine, project) -> bool:
    with engine.connect() as connection:
        options = PlanOptions(prune=True, selectors=tuple(project.sources), scope=tuple(project.sources))
        plan = compute_plan(connection, project, options)
    assert plan.changes == () and plan.kept == (), (plan.changes, plan.kept)
    return True


def test_a_run_is_invisible_until_its_swap_and_the_table_keeps_its_definition(target):
    project, engine, schema = target
    ref = ref_of(project)
    run(engine, ref, "run-1", [records("a", 30)])
    assert loaded(engine, schema) == sorted((f"a{i}", "run-1") for i in range(30))
    second = run(engine, ref, "run-2", [records("b", 10), records("c", 10)], finish=False)
    assert loaded(engine, schema) == sorted((f"a{i}", "run-1") for i in range(30))   # not a row of run-2 yet
    assert tables(engine, schema) == sorted(["items", "log", staging_name("log", "run-2")])
    assert no_changes(engine, project)   # the staging table is not the manifest's business
    second.finish()
    assert second.stats.deleted == 30
    assert loaded(engine, schema) == sorted([(f"b{i}", "run-2") for i in range(10)]
                                            + [(f"c{i}", "run-2") for i in range(10)])
    assert tables(engine, schema) == ["items", "log"]
    assert no_changes(engine, project)
    empty = run(engine, ref, "run-3", [])   # a run that read nothing leaves the table empty, as a run should
    assert (empty.stats.deleted, loaded(engine, schema)) == (20, [])


def test_a_view_over_the_table_survives_the_swap(target):
    project, engine, schema = target
    ref = ref_of(project)
    run(engine, ref, "run-1", [records("a", 5)])
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE VIEW {schema}.log_view AS SELECT event FROM {schema}.log")
    run(engine, ref, "run-2", [records("b", 3)])
    with engine.connect() as connection:
        events = connection.exec_driver_sql(f"SELECT event FROM {schema}.log_view").scalars()
        assert sorted(events) == ["b0", "b1", "b2"]
        connection.exec_driver_sql(f"DROP VIEW {schema}.log_view")
        connection.commit()


def test_a_failed_run_leaves_the_previous_table_and_a_killed_one_is_cleaned_by_the_next(target):
    project, engine, schema = target
    ref = ref_of(project)
    run(engine, ref, "run-1", [records("a", 12)])
    before = loaded(engine, schema)
    failed = run(engine, ref, "run-2", [records("b", 9)], finish=False)
    with pytest.raises(LoadError, match=r"record #1 of the page, column 'n'"):
        failed.load([{"event": "x", "n": 1}, {"event": "y", "n": "not a number"}])
    failed.discard()
    killed = run(engine, ref, "run-3", [records("c", 9)], finish=False)   # a kill: nothing after this
    assert loaded(engine, schema) == before
    assert tables(engine, schema) == sorted(["items", "log", staging_name("log", "run-3")])
    del killed
    run(engine, ref, "run-4", [records("d", 4)])
    assert loaded(engine, schema) == sorted((f"d{i}", "run-4") for i in range(4))
    assert tables(engine, schema) == ["items", "log"]


def test_a_swap_done_again_is_a_no_op_and_a_vanished_staging_table_fails(target):
    project, engine, schema = target
    ref = ref_of(project)
    run(engine, ref, "run-1", [records("a", 6)])
    again = Loader(engine, ref, redaction=REDACTION, run_id="run-1")
    again.staged_elsewhere()   # the chain's redelivered finish: staged by paginate, swapped already
    again.finish()
    assert loaded(engine, schema) == sorted((f"a{i}", "run-1") for i in range(6))
    lost = run(engine, ref, "run-2", [records("b", 3)], finish=False)
    lost.discard()   # as if another run had dropped it
    lost.staged_elsewhere()
    with pytest.raises(LoadError, match="the staging table of run run-2 is gone before its swap"):
        lost.finish()
    assert loaded(engine, schema) == sorted((f"a{i}", "run-1") for i in range(6))


def test_a_keyed_model_has_no_staging_table(target):
    project, engine, schema = target
    loader = run(engine, ref_of(project, "items"), "run-1", [records("a", 5)], finish=False)
    assert tables(engine, schema) == ["items", "log"]
    loader.finish()
    with engine.connect() as connection:
        assert connection.execute(sa.text(f"SELECT COUNT(*) FROM {schema}.items")).scalar_one() == 5


@pytest.mark.parametrize("url", ["postgresql", "mariadb"], indirect=True)
def test_readers_see_the_old_rows_or_the_new_never_a_mix(target):
    """A reader polling during swaps sees exactly one run's rows every time (the database servers
    serve readers during the swap; SQLite readers see the last committed snapshot)."""
    project, engine, schema = target
    ref = ref_of(project)
    run(engine, ref, "run-0", [records("a", 400)])
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def reader():
        with engine.connect() as connection:
            while not stop.is_set():
                seen.append(tuple(connection.execute(sa.text(
                    f"SELECT COUNT(*), COUNT(DISTINCT {RUN_ID}) FROM {schema}.log")).one()))
                connection.rollback()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(1, 6):
            run(engine, ref, f"run-{n}", [records("a", 400)])
    finally:
        stop.set()
        thread.join()
    assert seen and set(seen) == {(400, 1)}


def test_staging_names_fit_and_belong_to_one_table():
    long = "t" * MAX_IDENTIFIER
    names = [staging_name(long, "run-1"), staging_name("orders", "run-1"), staging_name("orders", "run-2"),
             staging_name("orders_x", "run-3"), "orders", "_kspyder_stg_x_orders"]
    assert all(len(n) <= MAX_IDENTIFIER for n in names)
    assert staging_name(long, "r") != staging_name("t" * (MAX_IDENTIFIER - 1), "r")
    assert stale_staging(names, "orders", "run-2") == [staging_name("orders", "run-1")]
    assert stale_staging(names, long, "run-2") == [staging_name(long, "run-1")]
    assert is_staging(staging_name("orders", "run-1")) and not is_staging("orders")
    assert is_staging("_kspyder_new_0123456789ab") and not is_staging("_kspyder_leases")


def test_a_redelivered_chain_page_replaces_its_rows_in_the_staging_table(target):
    """The queue chain's load of a page whose earlier delivery committed and died before its ledger
    marker: each load deletes that page's rows first, so the swapped-in table has the page once."""
    project, engine, schema = target
    ref = ref_of(project)
    run(engine, ref, "run-1", [records("a", 4)])
    paginate = Loader(engine, ref, redaction=REDACTION, run_id="run-2")
    paginate.stage()
    for index in (0, 1, 1, 0):   # pages 1 and 0 delivered twice
        page = Loader(engine, ref, redaction=REDACTION, run_id="run-2")
        page.staged_elsewhere()
        assert page.load_page(index, records(f"p{index}-", 5)) == 5
    assert loaded(engine, schema) == sorted((f"a{i}", "run-1") for i in range(4))
    last = Loader(engine, ref, redaction=REDACTION, run_id="run-2")
    last.staged_elsewhere()
    last.finish()
    assert loaded(engine, schema) == sorted((f"p{p}-{i}", "run-2") for p in (0, 1) for i in range(5))
    assert no_changes(engine, project)


@pytest.mark.parametrize("url", ["sqlite", "postgresql", "mariadb"], indirect=True)
def test_two_live_copies_of_a_chain_page_leave_it_once(target):
    """Two copies of one Load message running at once (a duplicate delivery) both write the page:
    the page lock makes the second wait for the first's commit and replace its rows."""
    project, engine, schema = target
    ref = ref_of(project)
    paginate = Loader(engine, ref, redaction=REDACTION, run_id="run-1")
    paginate.stage()
    start, errors = threading.Barrier(2), []

    def deliver() -> None:
        page = Loader(engine, ref, redaction=REDACTION, run_id="run-1")
        page.staged_elsewhere()
        try:
            start.wait()
            page.load_page(3, records("p3-", 3000))
        except BaseException as exc:   # collected: a thread's exception would not fail the test
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    last = Loader(engine, ref, redaction=REDACTION, run_id="run-1")
    last.staged_elsewhere()
    last.finish()
    assert loaded(engine, schema) == sorted((f"p3-{i}", "run-1") for i in range(3000))
