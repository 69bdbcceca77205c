"""The Azure blob store behaves exactly like the local one: the same tests run against both, the
Azure one on a real Azurite. Plus the settings the Functions host uses to reach its account."""
from __future__ import annotations

import threading
import uuid

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.storage.blob import ContainerClient

from shared.ledger import RunLedger, new_run_id
from shared.storage import LocalBlobStore
from shared.storage.azure import AzureBlobStore


@pytest.fixture(params=["local", "azure"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalBlobStore(tmp_path)
    return AzureBlobStore.from_connection_string(request.getfixturevalue("azurite").connection_string)


@pytest.fixture
def container() -> str:
    """A fresh container per test: Azurite lives for the whole session."""
    return f"t-{uuid.uuid4().hex[:12]}"


def test_put_get_and_overwrite(store, container):
    store.put(container, "a/b.json", b"1")
    assert store.get(container, "a/b.json") == b"1"
    store.put(container, "a/b.json", b"2")
    assert store.get(container, "a/b.json") == b"2"


def test_conditional_create_has_exactly_one_winner_among_racers(store, container):
    wins: dict[int, bool] = {}
    barrier = threading.Barrier(8)

    def racer(i: int) -> None:
        barrier.wait()
        wins[i] = store.create(container, "run/done", str(i).encode())

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, won in wins.items() if won]
    assert len(wins) == 8 and len(winners) == 1
    assert store.get(container, "run/done") == str(winners[0]).encode()  # the winner's content, whole
    assert store.create(container, "run/done", b"again") is False


def test_list_with_prefix_is_sorted(store, container):
    for name in ("b/2.json", "a/c.json", "a/b.json", "ab.json"):
        store.put(container, name, b"x")
    assert store.list(container, "a/") == ["a/b.json", "a/c.json"]
    assert store.list(container) == ["a/b.json", "a/c.json", "ab.json", "b/2.json"]
    assert store.list(container, "zzz") == []
    assert store.list(f"{container}-none") == []


def test_delete_and_missing(store, container):
    assert store.get(container, "missing") is None
    assert store.get(f"{container}-none", "missing") is None
    store.put(container, "a/b.json", b"1")
    store.put(container, "a/c.json", b"2")
    store.delete(container, "a/b.json")
    store.delete(container, "a/b.json")
    store.delete(f"{container}-none", "x")
    assert store.list(container) == ["a/c.json"] and store.get(container, "a/b.json") is None


@pytest.mark.parametrize("bad", ["../escape", "/abs", "", "a/../../b"])
def test_unsafe_names_are_refused(store, container, bad):
    for call in (
        lambda: store.put(container, bad, b"x"),
        lambda: store.create(container, bad, b"x"),
        lambda: store.get(container, bad),
        lambda: store.delete(container, bad),
    ):
        with pytest.raises(ValueError):
            call()


def test_ledger_on_azurite_counts_duplicate_pages_once(azurite):
    ledger = RunLedger(AzureBlobStore.from_connection_string(azurite.connection_string))
    run_id = new_run_id()
    ledger.start(run_id, ["api.users"], "test")
    assert ledger.page(run_id, "api.users", 0, "fetched", 10) is True
    assert ledger.page(run_id, "api.users", 0, "fetched", 10) is False  # redelivered message
    assert ledger.page(run_id, "api.users", 1, "fetched", 5) is True
    assert ledger.page(run_id, "api.users", 0, "loaded", 10) is True
    assert ledger.pages(run_id, "api.users", "fetched") == 2
    assert ledger.pages(run_id, "api.users", "loaded") == 1
    ledger.finish_model(run_id, "api.users", {"records": 15})
    record = ledger.finish(run_id, "succeeded", {"records": 15})
    assert ledger.get(run_id) == record and ledger.model_outcomes(run_id) == {"api.users": {"records": 15}}
    assert run_id in [r.run_id for r in ledger.recent()]


def test_create_that_won_but_lost_its_response_still_reports_the_win(azurite, container, monkeypatch):
    """The SDK retries a PUT whose response was lost; the retry meets our own blob (409). The
    creator must still learn it won, or a page would be counted by nobody."""
    store = AzureBlobStore.from_connection_string(azurite.connection_string)
    real_upload = ContainerClient.upload_blob

    def upload_then_conflict(self, name, data, overwrite, metadata):
        real_upload(self, name, data, overwrite=overwrite, metadata=metadata)
        raise ResourceExistsError("The specified blob already exists.")

    monkeypatch.setattr(ContainerClient, "upload_blob", upload_then_conflict)
    assert store.create(container, "page", b"1") is True
    assert store.create(container, "page", b"2") is False
    assert store.get(container, "page") == b"1"


def test_errors_do_not_carry_blob_contents(azurite):
    store = AzureBlobStore.from_connection_string(azurite.connection_string)
    secret = b"ssn=123-45-6789"
    with pytest.raises(ValueError) as info:
        store.put("Not_A_Valid_Container", "x", secret)
    assert "123-45-6789" not in str(info.value)


def test_from_settings_connection_string(azurite):
    store = AzureBlobStore.from_settings({"AzureWebJobsStorage": azurite.connection_string})
    assert store.service.url.startswith(f"http://127.0.0.1:{azurite.blob_port}/")
    dev = AzureBlobStore.from_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert dev.service.account_name == "devstoreaccount1"


def test_from_settings_identity_based():
    store = AzureBlobStore.from_settings({"AzureWebJobsStorage__accountName": "kspyderprod"})
    assert store.service.url.rstrip("/") == "https://kspyderprod.blob.core.windows.net"
    assert isinstance(store.service.credential, DefaultAzureCredential)

    uri = "https://other.blob.core.windows.net"
    store = AzureBlobStore.from_settings(
        {"AzureWebJobsStorage__blobServiceUri": uri, "AzureWebJobsStorage__accountName": "ignored",
         "AzureWebJobsStorage__credential": "managedidentity", "AzureWebJobsStorage__clientId": "0000-client"}
    )
    assert store.service.url.rstrip("/") == uri
    assert isinstance(store.service.credential, ManagedIdentityCredential)


def test_from_settings_names_the_missing_setting():
    with pytest.raises(ValueError, match=r"AzureWebJobsStorage.*AzureWebJobsStorage__blobServiceUri.*accountName"):
        AzureBlobStore.from_settings({"AzureWebJobsStorage": "  "})
