"""The blob-drop function as the host calls it: a real `azure.functions.blob.InputStream` built
the way the local host builds it (shared/localhost/blobs.py) from a blob uploaded to Azurite's
`kspyder-inbox`, passed to the decorated function, against a SQLite target and the ledger on Azurite."""
from __future__ import annotations

import json
import logging

import azure.functions as func
import pytest
import sqlalchemy as sa
from azure.functions.blob import InputStream

from functions import common
from functions.inbox import PATH, inbox, split_blob_name
from shared.chain.names import INBOX, STORAGE_SETTING
from shared.config.project import load_project
from shared.ingest import IngestError
from shared.ledger import RunLedger
from shared.storage.azure import AzureBlobStore
from shared.target.dialects import create_target_engine
from tests.flow_helpers import TEST_KEY, project_for
from tests.test_chain_helpers import applied_target
from tests.test_ingest import SECRET_EMAIL, customer, models


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
    yield azurite, target
    common.dispose_engines()
    # Azurite lives for the session: leave no dropped file for a later test's host to pick up
    container = AzureBlobStore.from_connection_string(azurite.connection_string).service.get_container_client(INBOX)
    if container.exists():
        for blob in container.list_blobs():
            container.delete_blob(blob.name)


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
                       metadata=dict(props.metadata or {}), blob_properties={"ETag": props.etag, "ContentLength": len(body)})


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
