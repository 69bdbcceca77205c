"""Issue 18's behaviour, proven offline: a busy or resuming database makes Load back off and
`POST /api/runs` answer 503; the target refuses a PII key other than the one its hashes were made
with, in the embedded run and the chain, until `rebuild` forgets it; document targets need a MongoDB
server in Azure; the Mongo client refuses a server older than the driver; `/api/health` reports
demo (loopback, local file) sources as not deployable; a relative KSPYDER_MANIFESTS names the app's folder."""
from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import azure.functions as func
import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from shared.chain import Chain, LoadJob, decode
from shared.chain.backoff import CONNECTION_LIMIT, RESUMING, busy_reason, delay_for
from shared.chain.names import LOAD
from shared.chain.pages import raw_blob_name
from shared.config.errors import ConfigError
from shared.config.project import load_project
from shared.config.settings import Settings
from shared.load.loader import LoadError
from shared.load.pii_key_check import TABLE, PiiKeyMismatch, check_pii_key, fingerprint, forget_pii_key
from shared.mongo.client import DocumentStoreError, check_server, open_documents
from shared.pipeline import run_models
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from shared.target.dialects import create_target_engine
from tests.helpers.chain import RecordingQueues
from tests.helpers.paths import ROOT

HASHING = """sources:
  shop:
    type: api
    base_url: https://api.shop.example
    models:
      customers:
        path: /customers
        primary_key: [id]
        columns:
          id: {type: integer}
          name: {type: string, pii: hash}
"""
DOCUMENTS = """sources:
  docs:
    type: api
    store: mongo
    base_url: https://api.docs.example
    models:
      things: {path: /things, primary_key: [id], columns: {id: {type: integer}}}
"""


def driver_error(module: str, *args):
    """An exception as a driver module raises it (classification reads the module, not the class)."""
    return type("Error", (Exception,), {"__module__": module})(*args)


def wrapped(orig: BaseException) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, orig)


# ---------------------------------------------------------------- classification (pure)

def test_busy_database_errors_are_recognised_by_code():
    assert busy_reason(wrapped(pymysql.err.OperationalError(1040, "Too many connections"))) == CONNECTION_LIMIT
    assert busy_reason(wrapped(psycopg.errors.TooManyConnections("too many connections for role"))) == CONNECTION_LIMIT
    assert busy_reason(wrapped(psycopg.OperationalError(
        'connection failed: FATAL:  sorry, too many clients already'))) == CONNECTION_LIMIT
    limit = driver_error("pyodbc", "42000", "[42000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Resource ID"
                                             " : 1. The request limit for the database is 150 and has been reached. "
                                             "(10928) (SQLExecDirectW)")
    assert busy_reason(wrapped(limit)) == CONNECTION_LIMIT
    paused = driver_error("pyodbc", "HY000", "[HY000] Database 'kspyder' on server 'sql-x' is not currently "
                                             "available. Please retry the connection later. (40613) (SQLDriverConnect)")
    assert busy_reason(wrapped(paused)) == RESUMING


def test_a_busy_error_is_found_behind_a_load_error():
    try:
        try:
            raise wrapped(pymysql.err.OperationalError(1040, "Too many connections"))
        except sa.exc.OperationalError:
            raise LoadError("shop.customers: batch of records 0-9 of the page failed and was rolled back") from None
    except LoadError as exc:
        assert busy_reason(exc) == CONNECTION_LIMIT


def test_other_errors_are_not_busy():
    assert busy_reason(ValueError("(10928)")) is None   # a number in some other error's text is not a code
    assert busy_reason(wrapped(pymysql.err.IntegrityError(1062, "Duplicate entry"))) is None
    assert busy_reason(wrapped(psycopg.errors.UniqueViolation("duplicate key"))) is None
    assert busy_reason(wrapped(driver_error("pyodbc", "42S02", "[42S02] Invalid object name (208)"))) is None
    assert busy_reason(LoadError("no table")) is None


def test_back_off_delays_are_spread():
    rng = random.Random(7)
    delays = [delay_for(CONNECTION_LIMIT, rng) for _ in range(50)]
    assert all(30 <= d <= 120 for d in delays) and len(set(delays)) == 50


# ---------------------------------------------------------------- the chain's Load backs off

def manifests(tmp_path: Path, connectors: str) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "connector_models.yml").write_text(connectors)
    return folder


def project_with(tmp_path: Path, connectors: str = HASHING, **env: str):
    return load_project(manifests(tmp_path, connectors), env={"KSPYDER_STATE_DIR": str(tmp_path / "state"), **env})


def test_a_load_on_a_full_database_is_requeued_later_without_an_error(tmp_path, monkeypatch):
    project = project_with(tmp_path, KSPYDER_PII_KEY="k1")
    queues = RecordingQueues(LocalQueueStore(tmp_path / "queues"))
    chain = Chain(project, LocalBlobStore(tmp_path / "blobs"), queues, lambda: sa.create_engine("sqlite://"))
    job = LoadJob("run-1", "shop.customers", 3, raw_blob_name("run-1", "shop.customers", 3), 10)

    def full(*args, **kwargs):
        raise wrapped(pymysql.err.OperationalError(1040, "Too many connections"))

    monkeypatch.setattr(chain.state, "claim_page", full)
    chain.load(job, dequeue_count=4)   # no exception: the host deletes the message, no attempt burnt
    [(queue, body, delay)] = queues.sent
    assert queue == LOAD and decode(body) == job and 30 <= delay <= 120   # same token: the redelivery carries on
    assert chain.state.errors("run-1") == []

    def broken(*args, **kwargs):
        raise wrapped(pymysql.err.ProgrammingError(1146, "Table doesn't exist"))

    monkeypatch.setattr(chain.state, "claim_page", broken)
    with pytest.raises(sa.exc.OperationalError):
        chain.load(job, dequeue_count=1)   # anything else is the host's to retry
    assert len(queues.sent) == 1


def test_post_runs_answers_a_resuming_database_with_503_and_retry_after(tmp_path, monkeypatch):
    from contextlib import contextmanager

    import functions.runs as runs

    class Resuming:
        def start_run(self, selectors, trigger):
            raise wrapped(driver_error("pyodbc", "HY000", "Database 'kspyder' is not currently available. (40613)"))

    @contextmanager
    def resuming_chain(project=None):
        yield Resuming()

    monkeypatch.setenv("KSPYDER_MANIFESTS", str(manifests(tmp_path, HASHING)))
    monkeypatch.setenv("KSPYDER_PII_KEY", "k1")
    monkeypatch.setattr(runs, "open_chain", resuming_chain)
    request = func.HttpRequest(method="POST", url="http://localhost/api/runs", body=b'{"models": ["shop"]}')
    response = runs.start_run(request)
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert "database resuming" in json.loads(response.get_body())["error"]


# ---------------------------------------------------------------- the PII key fingerprint

def test_the_target_refuses_another_pii_key_until_rebuild_forgets_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'target.db'}"
    engine = sa.create_engine(url)
    first = project_with(tmp_path, KSPYDER_PII_KEY="the-first-key")
    check_pii_key(engine, first, ["shop"])   # first load: recorded
    with engine.connect() as connection:
        stored = connection.execute(sa.text(f"SELECT source, value FROM {TABLE}")).all()
    assert stored == [("shop", fingerprint("the-first-key"))] and "the-first-key" not in stored[0][1]
    check_pii_key(engine, project_with(tmp_path, KSPYDER_PII_KEY="the-first-key"), ["shop"])   # same key: fine
    other = project_with(tmp_path, KSPYDER_PII_KEY="a-new-key")
    with pytest.raises(PiiKeyMismatch) as info:
        check_pii_key(engine, other, ["shop"])
    message = str(info.value)
    assert "source shop" in message and "`main.py rebuild shop`" in message and "restore the original key" in message
    assert "the-first-key" not in message and "a-new-key" not in message
    forget_pii_key(url, ["shop"])
    check_pii_key(engine, other, ["shop"])   # rebuilt: the new key is recorded
    with pytest.raises(PiiKeyMismatch):
        check_pii_key(engine, first, ["shop"])
    engine.dispose()


def test_loads_racing_on_a_new_sqlite_target_all_record_or_find_the_fingerprint(tmp_path):
    """Several loads of a fresh target create `_kspyder` at once: SQLite's single writer makes some
    of them meet a lock or a table created meanwhile, and none may fail for it."""
    import threading

    from shared.load import pii_key_check

    url = f"sqlite:///{tmp_path / 'target.db'}"
    project_with(tmp_path, KSPYDER_PII_KEY="the-key")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def load() -> None:
        engine = create_target_engine(url)   # WAL, explicit BEGIN: as a run's loads open it
        try:
            start.wait()
            pii_key_check._record(engine, "shop", fingerprint("the-key"))
        except BaseException as exc:   # collected: a thread's exception would not fail the test
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar() == 1
    engine.dispose()


def test_a_source_without_hashing_records_nothing(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    project = project_with(tmp_path, HASHING.replace(", pii: hash", ""), KSPYDER_PII_KEY="k")
    check_pii_key(engine, project, ["shop"])
    assert not sa.inspect(engine).has_table(TABLE)
    engine.dispose()


def test_embedded_run_and_chain_refuse_another_key(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'target.db'}")
    check_pii_key(engine, project_with(tmp_path, KSPYDER_PII_KEY="old"), ["shop"])
    project = project_with(tmp_path, KSPYDER_PII_KEY="new")
    summary = run_models(project, project.models([]), engine=engine)   # main.py run
    [result] = summary.results
    assert not summary.ok and "another PII key" in result.error and "rebuild shop" in result.error
    chain = Chain(project, LocalBlobStore(tmp_path / "blobs"), LocalQueueStore(tmp_path / "queues"), lambda: engine)
    with pytest.raises(PiiKeyMismatch):   # POST /api/runs answers it with 409, before anything is queued
        chain.start_run(["shop"])
    engine.dispose()


# ---------------------------------------------------------------- documents need a server in Azure

def test_store_mongo_without_a_uri_is_a_config_error_in_azure(tmp_path):
    with pytest.raises(ConfigError) as info:
        project_with(tmp_path, DOCUMENTS, KSPYDER_STORAGE_MODE="azure")
    assert [str(i) for i in info.value.issues] == [
        "connector_models.yml:4 sources.docs.store: store: mongo needs a MongoDB server in Azure: set "
        "KSPYDER_MONGO_URI (DEPLOY_COSMOS_MONGO=true deploys Cosmos DB for MongoDB); the embedded document store "
        "is a folder of one instance, lost on scale-in and not shared between instances"]
    project_with(tmp_path, DOCUMENTS, KSPYDER_STORAGE_MODE="azure", KSPYDER_MONGO_URI="mongodb://db.example:27017/x")
    project_with(tmp_path, DOCUMENTS)   # local mode: the embedded store is fine


def test_no_embedded_document_store_in_azure_mode(tmp_path):
    settings = Settings.model_validate({"state_dir": str(tmp_path), "storage": {"mode": "azure"}})
    with pytest.raises(DocumentStoreError, match="no MongoDB server in Azure"):
        open_documents(settings)
    assert not (tmp_path / "documents").exists()


def test_health_reports_document_targets_without_a_server(tmp_path, monkeypatch):
    from functions.health import health

    monkeypatch.setenv("KSPYDER_MANIFESTS", str(manifests(tmp_path, DOCUMENTS)))
    monkeypatch.setenv("KSPYDER_STORAGE_MODE", "azure")
    monkeypatch.setenv("KSPYDER_TARGET_URL", "postgresql+psycopg://app@db.example:5432/kspyder")
    response = health(func.HttpRequest(method="GET", url="http://localhost/api/health", body=b""))
    assert response.status_code == 500
    assert "store: mongo needs a MongoDB server in Azure" in json.loads(response.get_body())["problems"][0]


# ---------------------------------------------------------------- the Mongo server's version

class FakeMongo:
    def __init__(self, wire: int):
        self.admin = self
        self.wire = wire

    def command(self, name):
        assert name == "hello"
        return {"maxWireVersion": self.wire, "ok": 1}


def test_a_server_older_than_the_driver_is_refused_clearly(caplog):
    with pytest.raises(DocumentStoreError) as info:
        check_server(FakeMongo(8))   # MongoDB 4.2, as Cosmos DB's old default
    assert "wire version is 8, below this pymongo's minimum 9" in str(info.value)
    assert "6.0 or newer" in str(info.value)
    with caplog.at_level(logging.INFO, logger="kspyder.mongo"):
        assert check_server(FakeMongo(17)) == 17   # 6.0
    assert "wire version 17" in caplog.text


# ---------------------------------------------------------------- health: demo manifests

def test_health_reports_the_demo_manifests_as_not_deployable(monkeypatch):
    from functions.health import health

    monkeypatch.setenv("KSPYDER_MANIFESTS", str(ROOT / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", "k")
    monkeypatch.setenv("KSPYDER_STORAGE_MODE", "azure")
    monkeypatch.delenv("KSPYDER_TARGET_URL", raising=False)
    response = health(func.HttpRequest(method="GET", url="http://localhost/api/health", body=b""))
    body = json.loads(response.get_body())
    assert response.status_code == 500 and body["status"] == "not deployable"
    assert "target_url (KSPYDER_TARGET_URL) is a local file, not reachable from Azure" in body["problems"]
    assert any(p.startswith("source ") and "loopback address" in p for p in body["problems"]), body
    assert not any("127.0.0.1" in p or "sqlite" in p for p in body["problems"])   # identifiers, never URLs


def test_health_is_ok_for_remote_sources_in_azure(tmp_path, monkeypatch):
    from functions.health import health

    monkeypatch.setenv("KSPYDER_MANIFESTS", str(manifests(tmp_path, HASHING)))
    monkeypatch.setenv("KSPYDER_PII_KEY", "k")
    monkeypatch.setenv("KSPYDER_STORAGE_MODE", "azure")
    monkeypatch.setenv("KSPYDER_TARGET_URL", "mssql+pyodbc://id@sql-x.database.windows.net:1433/kspyder?driver=x")
    response = health(func.HttpRequest(method="GET", url="http://localhost/api/health", body=b""))
    assert response.status_code == 200 and json.loads(response.get_body())["status"] == "ok"


def test_loopback_and_file_urls():
    from shared.config.deployment import local_address

    for url in ("http://127.0.0.1:8080", "https://localhost/api", "http://[::1]:1/x", "http://0.0.0.0",
                "postgresql://u:p@127.0.0.2/db", "mysql+pymysql://root@localhost/test"):
        assert local_address(url) == "a loopback address", url
    assert local_address("sqlite:///samples/erp.db") == "a local file"
    for url in ("https://api.shop.example", "postgresql://u:p@db.example:5432/db", "http://10.0.0.4/x"):
        assert local_address(url) is None, url


# ---------------------------------------------------------------- the manifests folder

def test_a_relative_manifests_folder_is_the_app_folders(tmp_path):
    from function_app import APP_DIR, anchor_manifests

    env = {"KSPYDER_MANIFESTS": "manifests"}
    anchor_manifests(env, tmp_path)
    assert env == {"KSPYDER_MANIFESTS": str(tmp_path / "manifests")}
    absolute = {"KSPYDER_MANIFESTS": str(tmp_path / "elsewhere")}
    anchor_manifests(absolute, APP_DIR)
    assert absolute == {"KSPYDER_MANIFESTS": str(tmp_path / "elsewhere")}
    empty: dict = {}
    anchor_manifests(empty, APP_DIR)
    assert empty == {}
