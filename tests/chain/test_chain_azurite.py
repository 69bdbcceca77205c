"""The chain's happy path on Azurite: Azure Blob Storage for the ledger, claims and raw pages,
Azure Storage queues (base64, as the Functions host reads them) between the steps."""
from __future__ import annotations

import pytest

from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain import Chain
from shared.chain.names import FETCH, LOAD, PAGINATE, RAW, TRANSFORM
from shared.chain.pump import drain
from shared.storage.azure import AzureBlobStore
from shared.storage.queues import AzureQueueStore
from tests.helpers.chain import applied_target, build_project, reference_snapshot, snapshot, transform_events


def empty(queues: AzureQueueStore) -> None:
    """Azurite lives for the whole session: leave the chain's queues as found (empty)."""
    for queue in (PAGINATE, FETCH, LOAD, TRANSFORM):
        while batch := queues.receive(queue, 32, 30):
            for message in batch:
                queues.delete(queue, message)


@pytest.fixture
def storage(azurite):
    blobs = AzureBlobStore.from_connection_string(azurite.connection_string)
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    empty(queues)
    yield blobs, queues
    empty(queues)


@pytest.mark.parametrize("pages_per_message", [1, 5])
def test_chain_on_azurite_lands_what_the_embedded_run_lands(tmp_path, storage, pages_per_message):
    blobs, queues = storage
    with SampleApi(ApiConfig(customers=130, events=70)) as api:
        project = build_project(tmp_path, api.base_url, shop=["customers", "events", "countries"], erp=["orders"],
                                settings={"chain": {"pages_per_message": pages_per_message}})
        expected = reference_snapshot(project, tmp_path)
        engine = applied_target(project, tmp_path / "chain.db")
        try:
            def chain() -> Chain:
                return Chain(project, blobs, queues, lambda: engine)

            with chain() as first:
                run_id = first.start_run(trigger="test")
            drain(chain, queues, timeout=60, visibility_timeout=5)
            assert snapshot(engine, project) == expected
            with chain() as last:
                status = last.run_status(run_id)
        finally:
            engine.dispose()
    assert [e.run_id for e in transform_events(queues)] == [run_id]
    assert status["done"] and status["errors"] == []
    assert {m: (s["planned"], s["loaded"]) for m, s in status["models"].items()} == {
        "shop.customers": (6, 6), "shop.events": (4, 4), "shop.countries": (1, 1), "erp.orders": (3, 3)}
    pages = range(6) if pages_per_message == 1 else (0, 1, 5)   # pages 1-4 in one blob
    assert blobs.list(RAW, f"{run_id}/shop/customers/") == [f"{run_id}/shop/customers/{i:06d}.jsonl" for i in pages]
