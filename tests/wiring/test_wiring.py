"""The one wiring of a model in a run: the target engine's schemas (`target/engine.py`, and
`schema.desired.schema_engine` for plan and apply), and the batch size, loader, stripper and ledger
marks of `shared/wiring.py`, as every mode builds them."""
from __future__ import annotations

import pytest

from shared.config.errors import ConfigError
from shared.ledger import RunLedger
from shared.schema.desired import schema_engine
from shared.storage import LocalBlobStore
from shared.target.engine import target_engine
from shared.wiring import ModelRun, batch_size
from tests.helpers.flow import ID, api_source, project_for

SOURCES = {
    "shop": api_source("http://127.0.0.1:1", {"orders": {"path": "/o", "primary_key": ["id"], "columns": ID},
                                             "events": {"path": "/e", "columns": ID}}),
    "crm": api_source("http://127.0.0.1:1", {"people": {"path": "/p", "primary_key": ["id"], "columns": ID}}),
    "docs": api_source("http://127.0.0.1:1", {"notes": {"path": "/n", "primary_key": ["id"]}}, store="mongo"),
}


def _project(tmp_path, settings=None):
    return project_for(tmp_path, SOURCES, {"target_url": f"sqlite:///{tmp_path / 'target.db'}", **(settings or {})})


def _attached(engine):
    try:
        with engine.connect() as connection:
            return {row[1] for row in connection.exec_driver_sql("PRAGMA database_list")}
    finally:
        engine.dispose()


def test_sqlite_engine_knows_every_sql_source_and_derived_schema(tmp_path):
    project = _project(tmp_path)
    (tmp_path / "manifests" / "transformations.yml").write_text(
        "pipelines:\n  daily:\n    inputs: {o: shop.orders}\n    output: marts.daily\n"
        "    steps:\n      - filter: \"id > 0\"\n")
    assert _attached(target_engine(project)) == {"main", "shop", "crm"}   # a run step's: store: mongo has none
    assert _attached(target_engine(project, derived=lambda: ["marts"])) == {"main", "shop", "crm", "marts"}
    assert _attached(schema_engine(project)) == {"main", "shop", "crm", "marts"}   # plan/apply: the outputs too


def test_server_engine_reads_no_derived_manifest(tmp_path):
    project = _project(tmp_path)
    (tmp_path / "manifests" / "transformations.yml").write_text("pipelines: [not, a, mapping]\n")
    with pytest.raises(ConfigError):
        schema_engine(project)   # SQLite needs the derived schemas, so it reads (and checks) the file
    engine = schema_engine(project, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert engine.dialect.name == "postgresql"   # no connection made, no manifest read
    engine.dispose()


def test_one_batch_size_setting(tmp_path):
    assert batch_size(_project(tmp_path)) == 5000
    (tmp_path / "other").mkdir()
    project = _project(tmp_path / "other", {"load": {"batch_size": 7}})
    ledger = RunLedger(LocalBlobStore(str(tmp_path / "storage")))
    [ref] = project.models(["shop.orders"])
    engine = target_engine(project)
    try:
        loader = ModelRun(project, ref, "run-1", ledger, engine).table_loader()
        assert (loader.batch_size, loader.run_id) == (7, "run-1")
        tagged = ModelRun(project, ref, "run-1", ledger, engine).table_loader(tag="file-9")
        assert tagged.run_id == "file-9"   # an inbox file's rows carry its id
    finally:
        engine.dispose()


def test_marks_and_outcome_go_to_the_ledger(tmp_path):
    project = _project(tmp_path)
    ledger = RunLedger(LocalBlobStore(str(tmp_path / "storage")))
    [ref] = project.models(["shop.events"])
    run = ModelRun(project, ref, "run-2", ledger)
    ledger.start("run-2", [ref.qualified], "test")
    assert run.mark(0, 0, "fetched", 10) is True
    assert run.mark(0, 0, "fetched", 10) is False   # a duplicate
    assert run.mark(1, 4, "fetched", 40) is True
    run.mark(0, 4, "loaded", 50)
    assert ledger.page_counts("run-2", "shop.events") == {"fetched": 5, "loaded": 5}
    assert ledger.records("run-2", "shop.events") == 50
    run.finish({"model": ref.qualified, "rows": 50})
    assert ledger.model_outcomes("run-2") == {"shop.events": {"model": "shop.events", "rows": 50}}


def test_stripper_and_loader_per_store(tmp_path):
    project = _project(tmp_path)
    ledger = RunLedger(LocalBlobStore(str(tmp_path / "storage")))
    [notes] = project.models(["docs.notes"])
    run = ModelRun(project, notes, "run-3", ledger)
    assert run.stripper() is not None
    with pytest.raises(ValueError, match="docs.notes: no target engine for a table model"):
        run.table_loader()

    class Documents:
        def loader(self, ref, run_id):
            return ("document loader", ref.qualified, run_id)

    assert run.document_loader(Documents()) == ("document loader", "docs.notes", "run-3")
    [orders] = project.models(["shop.orders"])
    with pytest.raises(ValueError, match="shop.orders: a table model loads through its table loader"):
        ModelRun(project, orders, "run-3", ledger).document_loader(Documents())
