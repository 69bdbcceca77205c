"""`GET /api/runs/{id}` as the host calls it, against Azurite: a run whose messages nobody handles
(its workers died) shows `abandoned` once its heartbeat has expired (`leases.ttl_seconds`)."""
from __future__ import annotations

import threading
import time

import pytest

from functions import common
from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain.names import PAGINATE, STORAGE_SETTING
from shared.storage.queues import AzureQueueStore
from tests.helpers.app import as_json, empty, get, post
from tests.helpers.chain import applied_target, build_project
from tests.helpers.flow import TEST_KEY

TTL = 1.0


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=20)) as server:
        yield server


@pytest.fixture
def app_env(azurite, api, tmp_path, monkeypatch):
    project = build_project(tmp_path, api.base_url, shop=["customers"], erp=[], throttle={},
                            settings={"leases": {"ttl_seconds": TTL}})
    target = tmp_path / "target.db"
    applied_target(project, target).dispose()
    monkeypatch.setenv(STORAGE_SETTING, azurite.connection_string)
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
    monkeypatch.setenv("KSPYDER_PII_KEY", TEST_KEY)
    monkeypatch.setenv("KSPYDER_TARGET_URL", f"sqlite:///{target}")
    queues = AzureQueueStore.from_connection_string(azurite.connection_string)
    empty(queues)
    yield queues
    common.dispose_engines()
    empty(queues)


def test_a_run_nobody_works_on_shows_abandoned(app_env):
    response = post({"models": ["shop.customers"]})
    assert response.status_code == 202, response.get_body()
    run_id = as_json(response)["run_id"]
    for message in app_env.receive(PAGINATE, 32, 30):   # taken by a worker that then died
        app_env.delete(PAGINATE, message)
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        seen.append(as_json(get(run_id))["status"])
        if seen[-1] != "running":
            break
        threading.Event().wait(0.2)
    assert seen[-1] == "abandoned" and set(seen) <= {"running", "abandoned"}, seen
