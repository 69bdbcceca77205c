"""The whole serverless chain on a laptop: sample API (50+ pages, every pagination type) -> HTTP
`POST /api/runs` through the local host -> queue functions with 4 workers on Azurite ->
PostgreSQL. Exact rows, no planted PII in the tables nor in the raw page blobs, one transform
event, and the status route reports the run done."""
from __future__ import annotations

import json
import uuid

import pytest
import requests
import sqlalchemy as sa
from azure.storage.blob import BlobServiceClient

from devhost import LocalHost, QueueSettings, load_app
from functions import common
from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain.messages import decode
from shared.chain.names import RAW, STORAGE_SETTING, TRANSFORM
from shared.schema.apply import PlanStamp, apply_stamped
from shared.schema.plan import PlanOptions, compute_plan
from shared.storage.queues import AzureQueueStore
from shared.target.dialects import create_target_engine, drop_schema
from tests.helpers.app import empty
from tests.helpers.chain import shop_models
from tests.helpers.devhost import call
from tests.helpers.flow import TEST_KEY, project_for

COUNTS = {"customers": 1000, "products": 200, "orders": 200, "events": 200, "tickets": 120}
FAST = QueueSettings(batch_size=8, max_dequeue_count=3, visibility_timeout=0.0, max_polling_interval=0.2)


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(**COUNTS)) as server:
        yield server


def planted(api_url: str) -> set[str]:
    values: set[str] = set()
    for page in range(1, 11):
        for c in requests.get(f"{api_url}/v1/customers", params={"page": page, "per_page": 100},
                              timeout=30).json()["data"]:
            values |= {c["email"], c["full_name"], c["phone"], c["iban"]}
    return values


def test_run_through_the_local_host_into_postgres(azurite, api, postgres_url, tmp_path, monkeypatch):
    source = f"kt_host_{uuid.uuid4().hex[:8]}"
    models = {k: v for k, v in shop_models().items() if k != "countries"}
    project = project_for(tmp_path, {source: {"type": "api", "base_url": api.base_url, "models": models}},
                          {"target_url": postgres_url, "storage": {"root": str(tmp_path / "storage")}})
    engine = create_target_engine(postgres_url, [source])
    with engine.connect() as connection:
        plan = compute_plan(connection, project, PlanOptions())
    apply_stamped(engine, project, PlanStamp.of(plan))
    for name, value in {STORAGE_SETTING: azurite.connection_string, "KSPYDER_MANIFESTS": str(tmp_path / "manifests"),
                        "KSPYDER_PII_KEY": TEST_KEY, "KSPYDER_TARGET_URL": postgres_url,
                        "KSPYDER_HOST_KEY": "e2e-key", "KSPYDER_SCHEDULE": "0 */5 * * * *"}.items():
        monkeypatch.setenv(name, value)
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    empty(queues)
    host = LocalHost(load_app(), settings=FAST, workers=4)
    port = host.start_http(port=0)
    base = f"http://127.0.0.1:{port}/api"
    events = []
    trigger = next(t for t in host.queue_triggers if TRANSFORM in t.functions).functions[TRANSFORM]
    real = trigger.function
    object.__setattr__(trigger, "function", lambda msg: (events.append(decode(msg.get_json())), real(msg))[1])
    try:
        status, _, body = call(f"{base}/runs", "POST", json.dumps({"models": [source]}).encode(),
                               {"x-functions-key": "e2e-key", "Content-Type": "application/json"})
        assert status == 202, body
        run_id = json.loads(body)["run_id"]
        host.run_queues(once=True, timeout=120)
        with engine.connect() as connection:
            counts = {m: connection.execute(sa.text(f"SELECT COUNT(*) FROM {source}.{m}")).scalar_one() for m in models}
            text = " ".join(str(v) for m in models
                            for row in connection.execute(sa.text(f"SELECT * FROM {source}.{m}")) for v in row)
        assert counts == COUNTS
        container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(RAW)
        blobs = [b.name for b in container.list_blobs(name_starts_with=f"{run_id}/")]
        assert len(blobs) >= 50
        raw = " ".join(container.download_blob(name).readall().decode() for name in blobs)
        leaked = sorted(v for v in planted(api.base_url) if v in text or v in raw)
        assert leaked == []
        assert [e.run_id for e in events] == [run_id]
        status, _, body = call(f"{base}/runs/{run_id}?code=e2e-key")
        assert status == 200 and json.loads(body)["done"] is True
    finally:
        host.stop()
        common.dispose_engines()
        empty(queues)
        with engine.begin() as connection:
            drop_schema(connection, source)
        engine.dispose()
