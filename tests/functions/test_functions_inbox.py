"""The blob-drop function as the host calls it: a real `azure.functions.blob.InputStream` built
the way the local host builds it (devhost/blobs.py) from a blob uploaded to Azurite's
`kspyder-inbox`, passed to the decorated function, against a SQLite target and the ledger on Azurite."""
from __future__ import annotations

import base64
import json
import logging
import secrets

import azure.functions as func
import pytest
import sqlalchemy as sa
from azure.core.exceptions import HttpResponseError
from azure.functions.blob import InputStream
from azure.storage.queue import QueueServiceClient

from functions import common
from functions.inbox import PATH, inbox, split_blob_name
from shared.chain.names import INBOX, STORAGE_SETTING
from shared.config.project import load_project
from shared.inbox.drops import IngestError
from shared.ledger import RunLedger
from shared.storage.azure import AzureBlobStore
from shared.target.dialects import create_target_engine
from tests.helpers.chain import applied_target
from tests.helpers.flow import TEST_KEY, project_for
from tests.helpers.inbox import SECRET_EMAIL, customer, models


@pytest.fixture
def app_env(azurite, tmp_path, monkeypatch):
    project = project_for(tmp_path, {"shop": {"type": "api", "base_url": "http://127.0.0.1:9", "models": models()}},
                          {"target_url": f"sqlite:///{tmp_path / 'unused.db'}",
                           "storage": {"root": str(tmp_path / "storage")}})
    target = tmp_path / "target.db"
    applied_target(project, target).dispose()
    monkeypatch.setenv(STORAGE_SETTING, azurite.connection_string)
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{target}")
    monkeypatch.setenv("KSPYDER_SCHEDULE", "0 */5 * * * *")   # the local host resolves every binding
    yield azurite, target
    common.dispose_engines()
    # Azurite lives for the session: leave no dropped file for a later test's host to pick up
    container = AzureBlobStore.from_connection_string(azurite.connection_string).service.get_container_client(INBOX)
    if container.exists():
        try:
            for blob in container.list_blobs():
                container.delete_blob(blob.name)
        except HttpResponseError:   # a name storage cannot address (a '..' segment): the container goes
            container.delete_container()


def delivered(connection_string: str, blob_name: str, data: bytes) -> InputStream:
    """Upload to kspyder-inbox, then build the InputStream exactly as BlobTriggers._deliver does."""
    service = AzureBlobStore.from_connection_string(connection_string).service
    container = service.get_container_client(INBOX)
    if not container.exists():
        container.create_container()
    client = container.get_blob_client(blob_name)
    client.upload_blob(data, overwrite=True)
    props = client.get_blob_properties()
    body = client.download_blob().readall()
    return InputStream(data=body, name=f"{INBOX}/{blob_name}", uri=client.url, length=len(body),
                       metadata=dict(props.metadata or {}),
                       blob_properties={"ETag": props.etag, "ContentLength": len(body)})


def test_a_dropped_file_is_loaded_and_recorded(app_env, caplog):
    azurite, target = app_env
    data = "".join(json.dumps(customer(i)) + "\n" for i in (1, 2, 3)).encode()
    with caplog.at_level(logging.INFO, logger="kspyder.functions"):
        inbox(delivered(azurite.connection_string, "shop/customers/2024/drop.jsonl", data))
    assert "inbox shop/customers/2024/drop.jsonl: 3 records, 3 rows into shop.customers" in caplog.text
    engine = create_target_engine(f"sqlite:///{target}", load_project().sources)
    try:
        with engine.connect() as connection:
            ids = sorted(r[0] for r in connection.execute(sa.text("SELECT id FROM shop.customers")))
        assert ids == [1, 2, 3]
    finally:
        engine.dispose()
    assert SECRET_EMAIL.encode() not in target.read_bytes()
    runs = [r for r in RunLedger(AzureBlobStore.from_connection_string(azurite.connection_string)).recent(50)
            if r.trigger == "inbox" and r.summary.get("file") == "shop/customers/2024/drop.jsonl"]
    assert runs and runs[0].status == "succeeded" and runs[0].summary["rows"] == 3


def test_failures_propagate_for_the_host_to_retry(app_env):
    azurite, _ = app_env
    with pytest.raises(IngestError, match=r"bad.csv, line 2: .*column 'balance'"):
        inbox(delivered(azurite.connection_string, "shop/customers/bad.csv", b"id,balance\n1,abc\n"))
    with pytest.raises(IngestError, match="unknown model 'nope'"):
        inbox(delivered(azurite.connection_string, "shop/nope/x.json", b"[]"))
    with pytest.raises(IngestError, match="unsupported file type"):
        inbox(delivered(azurite.connection_string, "shop/customers/x.txt", b"hello"))


def test_blob_names_and_binding():
    assert split_blob_name("kspyder-inbox/shop/customers/a/b.csv") == ("shop", "customers", "a/b.csv")
    assert split_blob_name("shop/customers/b.csv") == ("shop", "customers", "b.csv")
    with pytest.raises(IngestError):
        split_blob_name("kspyder-inbox/shop/b.csv")
    app = func.FunctionApp()
    from functions.inbox import bp
    app.register_functions(bp)
    [function] = app.get_functions()
    [binding] = [json.loads(b) for b in function.get_raw_bindings()]
    assert binding["type"] == "blobTrigger" and binding["path"] == PATH == "kspyder-inbox/{source}/{model}/{name}"
    assert binding["connection"] == STORAGE_SETTING and binding["source"] == "EventGrid"


# ---------------------------------------------------------------- through the local host
def upload(connection_string: str, name: str, data: bytes) -> None:
    service = AzureBlobStore.from_connection_string(connection_string).service
    container = service.get_container_client(INBOX)
    if not container.exists():
        container.create_container()
    container.upload_blob(name, data, overwrite=True)


def inbox_runs(connection_string: str, token: str) -> list:
    return [r for r in RunLedger(AzureBlobStore.from_connection_string(connection_string)).recent(500)
            if r.trigger == "inbox" and token in r.summary.get("file", "")]


def target_rows(target, table: str, column: str) -> list:
    engine = create_target_engine(f"sqlite:///{target}", load_project().sources)
    try:
        with engine.connect() as connection:
            return sorted(r[0] for r in connection.execute(sa.text(f"SELECT {column} FROM shop.{table}")))
    finally:
        engine.dispose()


def record_pii_key(target) -> None:
    """The target's PII key fingerprint recorded up front: its first recording, by concurrent
    loads on SQLite, can fail one of them (retried by the host), which would blur the counts here."""
    from shared.load.pii_key_check import check_pii_key
    engine = create_target_engine(f"sqlite:///{target}", load_project().sources)
    try:
        check_pii_key(engine, load_project(), ["shop"])
    finally:
        engine.dispose()


def spied_host(workers: int):
    """The app on the local host, with the inbox function's calls counted by blob name."""
    from devhost import LocalHost, load_app
    from tests.helpers.devhost import FAST
    host = LocalHost(load_app(), settings=FAST, workers=workers)
    [function] = host.blob_triggers[0].functions
    calls: dict[str, int] = {}
    real = function.function

    def spy(blob: func.InputStream) -> None:
        calls[blob.name] = calls.get(blob.name, 0) + 1
        real(blob)

    object.__setattr__(function, "function", spy)
    return host, calls


def test_the_local_host_delivers_each_drop_once_whatever_the_workers(app_env):
    """The 0-row bug: two files into a keyless model, with several workers, both files' rows stay."""
    azurite, target = app_env
    token = secrets.token_hex(4)
    upload(azurite.connection_string, f"shop/countries/{token}-a.csv", b"code,name\nFR,France\nNO,Norway\n")
    upload(azurite.connection_string, f"shop/countries/{token}-b.csv", b"code,name\nDE,Germany\n")
    upload(azurite.connection_string, f"shop/customers/{token}-c.jsonl", json.dumps(customer(1)).encode())
    record_pii_key(target)
    host, calls = spied_host(workers=4)
    host.run_queues(once=True, timeout=60)
    assert calls == {f"{INBOX}/shop/countries/{token}-a.csv": 1, f"{INBOX}/shop/countries/{token}-b.csv": 1,
                     f"{INBOX}/shop/customers/{token}-c.jsonl": 1}
    assert target_rows(target, "countries", "code") == ["DE", "FR", "NO"]
    assert target_rows(target, "customers", "id") == [1]
    assert len(inbox_runs(azurite.connection_string, token)) == 3
    # a re-drop of one file replaces its rows only, and is delivered once more
    upload(azurite.connection_string, f"shop/countries/{token}-a.csv", b"code,name\nIT,Italy\n")
    host, calls = spied_host(workers=4)
    host.run_queues(once=True, timeout=60)
    assert target_rows(target, "countries", "code") == ["DE", "IT"]
    # a new host delivers every blob again (its receipts are in memory): the unchanged ones are no-ops
    assert set(calls.values()) == {1} and len(inbox_runs(azurite.connection_string, token)) == 4


def test_a_duplicate_delivery_is_a_no_op(app_env, caplog):
    azurite, target = app_env
    token = secrets.token_hex(4)
    stream = delivered(azurite.connection_string, f"shop/countries/{token}.csv", b"code,name\nFR,France\n")
    inbox(stream)
    again = InputStream(data=b"code,name\nFR,France\n", name=stream.name, uri=stream.uri, length=stream.length,
                        blob_properties=stream.blob_properties)
    with caplog.at_level(logging.INFO, logger="kspyder.functions"):
        inbox(again)
    assert "duplicate delivery ignored" in caplog.text
    assert target_rows(target, "countries", "code") == ["FR"]
    assert len(inbox_runs(azurite.connection_string, token)) == 1


BAD_NAMES = {   # as uploaded -> (as stored, the reason logged)
    "/shop/countries/lead.csv": ("/shop/countries/lead.csv", "starts with '/'"),
    "shop/countries/two\nlines.csv": ("shop/countries/two\nlines.csv", "control character"),
    "shop\\countries\\x\\..\\up.csv": ("shop/countries/x/../up.csv", "'.' or '..' segment"),
}


def test_unsafe_names_are_poisoned_once_with_the_reason(app_env, caplog):
    from devhost.blobs import BLOB_POISON
    from tests.helpers.devhost import FAST, raw_messages
    azurite, target = app_env
    for name in BAD_NAMES:   # Azurite stores a backslash as '/': how a '..' segment gets in
        upload(azurite.connection_string, name, b"code,name\nFR,France\n")
    with caplog.at_level(logging.INFO):
        host, calls = spied_host(workers=3)
        host.run_queues(once=True, timeout=60)
    poison = [json.loads(base64.b64decode(m)) for m in
              raw_messages(QueueServiceClient.from_connection_string(azurite.connection_string), BLOB_POISON)]
    triggers = host.blob_triggers[0]
    for stored, reason in BAD_NAMES.values():
        assert [p["FunctionId"] for p in poison if p["BlobName"] == stored] == ["inbox"]
        [(key, count)] = [(k, n) for k, n in triggers.attempts.items() if k[1] == stored]
        assert count == FAST.max_dequeue_count
        assert reason in caplog.text
    assert triggers.poisoned == {"inbox": 3} and triggers.delivered == {"inbox": 0}
    assert "attempt 3 of 3" in caplog.text and "attempt 4" not in caplog.text
    assert "two\nlines" not in caplog.text and "two\\x0alines" in caplog.text
    assert target_rows(target, "countries", "code") == []
    assert calls.get(f"{INBOX}/shop/countries/x/../up.csv") is None   # unreadable: never handed over


def test_a_name_holding_pii_is_logged_and_recorded_scrubbed(app_env, caplog):
    azurite, target = app_env
    token = secrets.token_hex(4)
    upload(azurite.connection_string, f"shop/countries/{token}/{SECRET_EMAIL}.csv", b"code,name\nFR,France\n")
    with caplog.at_level(logging.INFO):
        host, calls = spied_host(workers=2)
        host.run_queues(once=True, timeout=60)
    [run] = inbox_runs(azurite.connection_string, token)
    assert run.status == "succeeded" and run.summary["file"] == f"shop/countries/{token}/[EMAIL]"   # .csv: a TLD
    assert SECRET_EMAIL not in caplog.text and f"{token}/[EMAIL]" in caplog.text
    assert target_rows(target, "countries", "code") == ["FR"]
