"""Write dispositions (issue 16 §1) on SQLite, PostgreSQL and MariaDB, in `main.py run` and in the
queue chain: append keeps every run; soft deletes mark only after a complete, full run and clear
when a row returns; scd2 opens and closes versions across runs with changes, deletions and returns;
a keyed replace swaps the run in; a limited run never marks; an end applied twice changes nothing."""
from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain import Chain
from shared.chain.pump import drain
from shared.ledger import RunLedger
from shared.load.dispositions import DISPOSITIONS, disposition_for, row_hash
from shared.load.loader import Loader
from shared.pipeline import run_models
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from shared.target.columns import CURRENT, DELETED_AT, RUN_ID, VALID_FROM, VALID_TO
from shared.target.dialects import create_target_engine, drop_schema
from shared.target.tables import model_table
from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, Seen, StubServer
from tests.helpers.main_process import finished, start

COLUMNS = {"id": {"type": "integer"}, "price": {"type": "decimal", "precision": 10, "scale": 2},
           "status": {"type": "string", "length": 20}}
MODELS = {
    "prices": {"path": "/items", "records": "data", "primary_key": ["id"], "deletes": "soft", "columns": COLUMNS},
    "history": {"path": "/items", "records": "data", "primary_key": ["id"], "history": "scd2", "deletes": "soft",
                "columns": COLUMNS},
    "kept": {"path": "/items", "records": "data", "primary_key": ["id"], "history": "scd2", "columns": COLUMNS},
    "events": {"path": "/items", "records": "data", "primary_key": ["id"], "write": "append", "columns": COLUMNS},
    "snapshot": {"path": "/items", "records": "data", "primary_key": ["id"], "write": "replace", "columns": COLUMNS},
}


class Items:
    """A list API whose items the test changes between runs; two pages of at most 3 items."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[int, dict[str, Any]] = {}

    def set(self, **changes: Any) -> None:
        with self.lock:
            for key, value in changes.items():
                number = int(key.removeprefix("i"))
                if value is None:
                    self.items.pop(number, None)
                else:
                    self.items[number] = {"id": number, "price": value[0], "status": value[1]}

    def __call__(self, seen: Seen) -> Reply:
        with self.lock:
            items = [self.items[k] for k in sorted(self.items)]
        return Reply(body={"data": items})


@pytest.fixture()
def api():
    items = Items()
    with StubServer(handler=items) as server:
        yield items, server.url("")


@pytest.fixture()
def target(url, tmp_path, api):
    items, base = api
    schema = f"kt_disp_{uuid.uuid4().hex[:8]}"
    project = project_for(tmp_path, {schema: {"type": "api", "base_url": base, "models": MODELS}},
                          {"target_url": url, "storage": {"root": str(tmp_path / "storage")}})
    engine = create_target_engine(url, [schema])
    with engine.connect() as connection:
        plan = compute_plan(connection, project, PlanOptions(selectors=(schema,)))
    apply_stamped(engine, project, PlanStamp.of(plan))
    yield project, engine, schema, items, tmp_path
    with engine.begin() as connection:
        drop_schema(connection, schema)
    engine.dispose()


def embedded_run(project, engine, tmp_path, limit=None) -> dict[str, dict[str, int]]:
    summary = run_models(project, project.models(), engine=engine, limit=limit,
                         ledger=RunLedger(LocalBlobStore(tmp_path / "ledger")))
    assert summary.ok, summary.render()
    return {r.model.split(".", 1)[1]: r.changes for r in summary.results}


def chain_run(project, engine, tmp_path) -> dict[str, dict[str, int]]:
    blobs, queues = LocalBlobStore(tmp_path / "blobs"), LocalQueueStore(tmp_path / "queues")

    def make() -> Chain:
        return Chain(project, blobs, queues, lambda: engine)

    with make() as chain:
        run_id = chain.start_run((), trigger="test")
    drain(make, queues, timeout=60)
    with make() as chain:
        status = chain.run_status(run_id)
    assert status["status"] == "succeeded", status
    outcomes = RunLedger(blobs).model_outcomes(run_id)
    return {m.split(".", 1)[1]: outcomes[m].get("changes", {}) for m in outcomes}


def rows(engine, schema, table, *extra: str) -> list[tuple]:
    with engine.connect() as connection:
        columns = ", ".join(["id", "price", "status", *extra])
        return sorted(tuple(r) for r in connection.execute(sa.text(f"SELECT {columns} FROM {schema}.{table}")))


def plain(value: Any) -> Any:
    return float(value) if value is not None and not isinstance(value, (str, int, bool)) else value


def versions(engine, schema, table) -> list[tuple]:
    """(id, price, status, open?, current?) per version, oldest first per id."""
    with engine.connect() as connection:
        found = connection.execute(sa.text(
            f"SELECT id, price, status, {VALID_TO}, {CURRENT}, {VALID_FROM} FROM {schema}.{table}")).all()
    return sorted(((r[0], plain(r[1]), r[2], r[3] is None, bool(r[4])) for r in found),
                  key=lambda v: (v[0], not v[3], v[1]))


@pytest.mark.parametrize("mode", ["embedded", "chain"])
def test_three_runs_with_changes_deletions_and_returns(target, mode):
    project, engine, schema, items, tmp_path = target
    run = (lambda: embedded_run(project, engine, tmp_path)) if mode == "embedded" else (
        lambda: chain_run(project, engine, tmp_path / f"chain{uuid.uuid4().hex[:6]}"))

    items.set(i1=("1.00", "new"), i2=("2.00", "new"), i3=("3.00", "new"), i4=("4.00", "new"), i5=("5.00", "new"))
    first = run()
    assert first["history"] == {"opened": 5} and first["prices"] == {} and first["events"] == {"appended": 5}

    items.set(i2=("2.50", "new"), i5=None)               # a change, a deletion
    second = run()
    assert second["prices"] == {"marked": 1}
    assert second["history"] == {"opened": 1, "closed": 2}   # i2 closed and reopened, i5 closed
    assert second["kept"] == {"opened": 1, "closed": 1}      # without deletes: soft, i5 stays current
    assert rows(engine, schema, "prices", DELETED_AT)[4][3] is not None   # i5 marked, kept
    assert [r[3] is None for r in rows(engine, schema, "prices", DELETED_AT)] == [True] * 4 + [False]
    assert [r[0] for r in rows(engine, schema, "snapshot")] == [1, 2, 3, 4]

    items.set(i3=("3.00", "done"), i5=("5.00", "new"))   # a change, a return
    third = run()
    assert third["prices"] == {"cleared": 1}
    assert third["history"] == {"opened": 2, "closed": 1}
    assert all(r[3] is None for r in rows(engine, schema, "prices", DELETED_AT))

    assert versions(engine, schema, "history") == [
        (1, 1.0, "new", True, True),
        (2, 2.5, "new", True, True), (2, 2.0, "new", False, False),
        (3, 3.0, "done", True, True), (3, 3.0, "new", False, False),
        (4, 4.0, "new", True, True),
        (5, 5.0, "new", True, True), (5, 5.0, "new", False, False)]
    assert len(rows(engine, schema, "events", RUN_ID)) == 5 + 4 + 5
    assert len({r[3] for r in rows(engine, schema, "events", RUN_ID)}) == 3
    assert [r[:3] for r in rows(engine, schema, "snapshot")] == [r[:3] for r in rows(engine, schema, "prices")]


def test_a_limited_run_never_marks_deletes_but_clears_returns(target):
    project, engine, schema, items, tmp_path = target
    items.set(i1=("1.00", "a"), i2=("2.00", "a"), i3=("3.00", "a"))
    embedded_run(project, engine, tmp_path)
    items.set(i3=None)
    limited = embedded_run(project, engine, tmp_path, limit=1)
    assert limited["prices"] == {} and limited["history"] == {}
    assert all(r[3] is None for r in rows(engine, schema, "prices", DELETED_AT))
    embedded_run(project, engine, tmp_path)
    assert [r[3] is None for r in rows(engine, schema, "prices", DELETED_AT)] == [True, True, False]


def test_an_end_applied_twice_changes_nothing(target):
    """The queue chain may deliver a model's end twice: the second finds it done."""
    project, engine, schema, items, tmp_path = target
    items.set(i1=("1.00", "a"), i2=("2.00", "a"))
    for name in ("history", "events", "prices", "snapshot"):
        [ref] = project.models([f"{schema}.{name}"])
        loader = Loader(engine, ref, redaction="[REDACTED]", run_id=f"run-{name}", batch_size=10)
        loader.check_drift()
        loader.stage()
        loader.load([{"id": 1, "price": Decimal("1.00"), "status": "a"},
                     {"id": 2, "price": Decimal("2.00"), "status": "a"}])
        loader.finish()
        before = rows(engine, schema, name, RUN_ID)
        again = Loader(engine, ref, redaction="[REDACTED]", run_id=f"run-{name}", batch_size=10)
        again.staged_elsewhere()
        assert again.finish().as_dict() == {}
        assert rows(engine, schema, name, RUN_ID) == before


def test_a_run_killed_before_its_end_leaves_the_table_as_it_was(target):
    project, engine, schema, items, tmp_path = target
    items.set(i1=("1.00", "a"), i2=("2.00", "a"))
    embedded_run(project, engine, tmp_path)
    before = {name: rows(engine, schema, name, RUN_ID) for name in ("history", "events", "snapshot")}
    for name in before:   # a run that staged its rows and died: no end
        [ref] = project.models([f"{schema}.{name}"])
        loader = Loader(engine, ref, redaction="[REDACTED]", run_id="killed-run", batch_size=10)
        loader.check_drift()
        loader.stage()
        loader.load([{"id": 1, "price": Decimal("9.00"), "status": "b"},
                     {"id": 3, "price": Decimal("3.00"), "status": "b"}])
    assert {name: rows(engine, schema, name, RUN_ID) for name in before} == before
    embedded_run(project, engine, tmp_path)   # the rerun drops the killed run's staging tables
    assert len(rows(engine, schema, "events")) == 4
    assert len(versions(engine, schema, "history")) == 2


def test_strategies_are_a_registry_and_hash_by_type():
    assert sorted(DISPOSITIONS) == ["append", "merge", "replace", "scd2"]
    assert row_hash((1, "a", None)) != row_hash(("1", "a", None)) != row_hash((1, "a", ""))


def test_an_unknown_disposition_lists_the_valid_ones(tmp_path):
    project = project_for(tmp_path, {"s": {"type": "api", "base_url": "http://127.0.0.1:1", "models": {
        "m": {"path": "/x", "primary_key": ["id"], "columns": {"id": {"type": "integer"}}}}}})
    [ref] = project.models(["s.m"])
    model = ref.model.model_copy(update={"write": "upsert"})
    with pytest.raises(ValueError, match="unknown write disposition 'upsert'; expected one of: merge, replace, append"):
        disposition_for(model, model_table(sa.MetaData(), ref, "[REDACTED]", "sqlite"))


def test_runs_killed_at_random_moments_leave_no_half_applied_end(tmp_path, postgres_url):
    """`main.py run` (a real process) killed with SIGKILL at random moments, then run again: an
    appended table holds whole runs only, a versioned one one current version per key and no
    duplicate, a soft-deleting one no row marked."""
    customers = 6_000   # past one load batch: a kill can land between batches
    source = f"kt_dkill_{uuid.uuid4().hex[:8]}"
    columns = {"id": {"type": "integer"}, "city": {"path": "address.city", "type": "string", "length": 100},
               "balance": {"type": "decimal", "precision": 12, "scale": 2}}
    pages = {"path": "/v1/customers", "records": "data", "params": {"per_page": 500}, "pii_scan": "off",
             "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"}, "columns": columns,
             "primary_key": ["id"]}
    models = {"appended": {**pages, "write": "append"}, "versioned": {**pages, "history": "scd2", "deletes": "soft"},
              "merged": {**pages, "deletes": "soft"}}
    engine = create_target_engine(postgres_url, [source])
    rng = random.Random(16)
    try:
        with SampleApi(ApiConfig(customers=customers)) as api:
            folder = tmp_path / "manifests"
            folder.mkdir()
            (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": {source: {
                "type": "api", "base_url": api.base_url, "throttle": {"concurrency": 2}, "models": models}}}))
            (folder / "settings.yml").write_text(yaml.safe_dump({
                "target_url": postgres_url, "state_dir": str(tmp_path / "state"), "leases": {"ttl_seconds": 1.0}}))
            started = time.monotonic()
            finished(start(folder, source, "--apply"))
            duration = time.monotonic() - started
            for _ in range(3):
                run = start(folder, source, "--wait", "5")
                time.sleep(rng.uniform(0.2, duration))
                run.send_signal(signal.SIGKILL)
                run.wait()
                finished(start(folder, source, "--wait", "5"))
                with engine.connect() as connection:
                    per_run = connection.execute(sa.text(
                        f"SELECT COUNT(*) FROM {source}.appended GROUP BY {RUN_ID}")).scalars().all()
                    assert set(per_run) == {customers}, per_run   # whole runs only
                    current = connection.execute(sa.text(
                        f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {source}.versioned WHERE {CURRENT}")).one()
                    assert tuple(current) == (customers, customers)
                    total = connection.execute(sa.text(f"SELECT COUNT(*) FROM {source}.versioned")).scalar_one()
                    assert total == customers   # the data did not change: no new version, ever
                    marked = connection.execute(sa.text(
                        f"SELECT COUNT(*) FROM {source}.merged WHERE {DELETED_AT} IS NOT NULL")).scalar_one()
                    assert marked == 0
    finally:
        with engine.begin() as connection:
            drop_schema(connection, source)
        engine.dispose()


def test_dropped_files_follow_the_model_disposition(target):
    """A file dropped in the inbox is a run that is never complete: appended, versioned, upserted
    with its soft deletes cleared and none marked; a keyed replace takes over keys and replaces
    only its own file's earlier rows."""
    import json

    from shared.inbox.drops import ingest_file

    project, engine, schema, items, tmp_path = target
    ledger = RunLedger(LocalBlobStore(tmp_path / "inbox-ledger"))
    items.set(i1=("1.00", "a"), i2=("2.00", "a"), i3=("3.00", "a"))
    embedded_run(project, engine, tmp_path)
    items.set(i3=None)
    embedded_run(project, engine, tmp_path)   # i3 soft-deleted, its version closed

    def drop(model: str, name: str, records: list[dict]) -> dict:
        data = json.dumps(records).encode()
        return ingest_file(project, schema, model, name, data, engine, ledger).as_dict()

    back = [{"id": 3, "price": "3.50", "status": "b"}]
    assert drop("prices", "back.json", back)["changes"] == {"cleared": 1}
    assert drop("history", "back.json", back)["changes"] == {"opened": 1}
    assert drop("events", "back.json", back)["changes"] == {"appended": 1}
    assert [r[0] for r in rows(engine, schema, "prices", DELETED_AT) if r[3] is not None] == []
    assert [v for v in versions(engine, schema, "history") if v[0] == 3][0] == (3, 3.5, "b", True, True)
    assert len(rows(engine, schema, "events")) == 3 + 2 + 1
    drop("snapshot", "a.json", [{"id": 1, "price": "9.00", "status": "file"},
                                {"id": 7, "price": "7.00", "status": "file"}])
    drop("snapshot", "a.json", [{"id": 7, "price": "7.70", "status": "file"}])   # the same file again
    assert [(r[0], r[2]) for r in rows(engine, schema, "snapshot")] == [(2, "a"), (7, "file")]
