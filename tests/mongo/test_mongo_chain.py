"""A `store: mongo` source through the queue chain (Paginate -> Fetch -> Load on local storage and
queues): the documents land exactly as the embedded run lands them, types restored from the JSON
page blobs, and no SQL table is involved."""
from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain import Chain
from shared.chain.pump import drain
from shared.mongo.client import open_documents
from shared.pipeline.run import run_models
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from tests.helpers.flow import project_for

CUSTOMERS = 33


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=CUSTOMERS)) as server:
        yield server


def project(tmp_path, base_url: str, state: str):
    return project_for(tmp_path / state, {"docs": {
        "type": "api", "store": "mongo", "base_url": base_url,
        "pagination": {"type": "page_number", "size_param": "per_page", "size": 10,
                       "total_pages_path": "meta.total_pages"},
        "models": {"customers": {"path": "/v1/customers", "records": "data", "primary_key": ["id"],
                                 "indexes": [{"keys": ["address.city"]}],
                                 "columns": {"created": {"type": "datetime"}, "balance": {"type": "decimal"},
                                             "name": {"path": "full_name", "type": "string", "pii": "hash"}}}}}},
        {"state_dir": str(tmp_path / state / "state"), "target_url": f"sqlite:///{tmp_path / state}/target.db",
         "storage": {"root": str(tmp_path / state / "storage")}})


def documents(settings) -> list[dict]:
    with open_documents(settings) as client:
        return [{k: v for k, v in d.items() if not k.startswith("_kspyder_")}
                for d in client["docs"]["customers"].find().sort("_id", 1)]


def test_chain_lands_what_the_embedded_run_lands(tmp_path, api) -> None:
    (tmp_path / "embedded").mkdir()
    (tmp_path / "chain").mkdir()
    embedded = project(tmp_path, api.base_url, "embedded")
    assert run_models(embedded, embedded.models()).ok
    expected = documents(embedded.settings)
    assert len(expected) == CUSTOMERS and isinstance(expected[0]["created"], datetime)

    chained = project(tmp_path, api.base_url, "chain")
    blobs, queues = LocalBlobStore(tmp_path / "chain" / "blobs"), LocalQueueStore(tmp_path / "chain" / "queues")
    make = lambda: Chain(chained, blobs, queues)   # noqa: E731 - a fresh Chain per message, as a function gets
    with make() as chain:
        run_id = chain.start_run(trigger="test")   # the drift check creates the indexes, no table needed
    drain(make, queues, timeout=30)
    with make() as chain:
        status = chain.run_status(run_id)
    assert status["status"] == "succeeded", status
    assert documents(chained.settings) == expected
    with open_documents(chained.settings) as client:
        assert "address.city_1" in client["docs"]["customers"].index_information()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'chain'}/target.db")
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
