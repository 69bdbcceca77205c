"""The parity suite's subset through the local Functions host on Azurite (issue 13 §4): a run
started over HTTP, its queues polled by `devhost` with the real functions of `function_app.py`,
Azure Blob Storage for the ledger and pages, must land, warn and fail as the embedded run does.

One cursor pagination, a stated total the API never reaches (by page numbers warning, by offsets
failing), a 429 on a fanned-out pagination, an API looping on its cursor and a SQL keyset model,
each crossing real queues and blobs between its steps.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import requests

from devhost import LocalHost, QueueSettings, load_app
from functions import common
from shared.chain.names import FETCH, LOAD, PAGINATE, STORAGE_SETTING, TRANSFORM
from shared.config.project import Project
from shared.ledger import RunLedger
from shared.storage.azure import AzureBlobStore
from shared.storage.queues import AzureQueueStore
from shared.target.dialects import create_target_engine
from tests.helpers.chain import applied_target, snapshot
from tests.helpers.flow import TEST_KEY
from tests.helpers.http_stub import StubServer
from tests.helpers.parity import Answers, PagingApi, assert_expected, build, chain_answers, embedded

API = ("cursor", "short_numbered", "short_fail", "limited", "cursor_loop")
SQL = ("orders",)
MODELS = [f"api.{name}" for name in API] + [f"erp.{name}" for name in SQL]
FAILING = {"api.short_fail", "api.cursor_loop"}
HOST_KEY = "parity-host-key"
# host.json's maxDequeueCount (functions/common.py relies on it), without its waits between deliveries
SETTINGS = QueueSettings(batch_size=8, max_dequeue_count=common.MAX_DEQUEUE_COUNT, visibility_timeout=0.0,
                         max_polling_interval=0.2)


def empty(queues: AzureQueueStore) -> None:
    """Azurite lives for the whole session: leave the chain's queues as found (empty)."""
    for queue in (PAGINATE, FETCH, LOAD, TRANSFORM):
        while batch := queues.receive(queue, 32, 30):
            for message in batch:
                queues.delete(queue, message)


def hosted(project: Project, tmp_path: Path, connection: str) -> Answers:
    """The run as Azure would make it: POST /api/runs to the local host, its queues drained by the
    app's functions, the status read back with GET /api/runs/{id}."""
    target = tmp_path / "hosted.db"
    applied_target(project, target).dispose()
    queues = AzureQueueStore.from_connection_string(connection)
    empty(queues)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(STORAGE_SETTING, connection)
        env.setenv("KSPYDER_MANIFESTS", str(tmp_path / "manifests"))
        env.setenv("KSPYDER_PII_KEY", TEST_KEY)
        env.setenv("KSPYDER_TARGET_URL", f"sqlite:///{target}")
        env.setenv("KSPYDER_HOST_KEY", HOST_KEY)
        env.setenv("KSPYDER_SCHEDULE", "0 0 0 1 1 *")   # the timer binding reads it; never due in the test
        host = LocalHost(load_app(), settings=SETTINGS, workers=3)
        headers = {"x-functions-key": HOST_KEY}
        try:
            base = f"http://127.0.0.1:{host.start_http(port=0)}/api"
            started = requests.post(f"{base}/runs", json={"models": ["api", "erp"]}, headers=headers, timeout=10)
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            host.run_queues(once=True, timeout=45)
            status = requests.get(f"{base}/runs/{run_id}", headers=headers, timeout=10)
            assert status.status_code == 200, status.text
            engine = create_target_engine(f"sqlite:///{target}", project.sources)
            try:
                tables = snapshot(engine, project)
            finally:
                engine.dispose()
        finally:
            host.stop()
            common.dispose_engines()
            empty(queues)
    outcomes = RunLedger(AzureBlobStore.from_connection_string(connection)).model_outcomes(run_id)
    return chain_answers(tables, status.json(), outcomes)


@pytest.fixture(scope="module")
def runs(azurite, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("parity-azurite")
    handler = PagingApi()
    with StubServer(handler=handler) as server:
        project = build(tmp_path, server.url(""), api=API, sql=SQL)
        first = embedded(project, tmp_path)
        assert handler.limited   # the 429 was answered
        handler.reset()
        second = hosted(project, tmp_path, azurite.connection_string)
        assert handler.limited
    return first, second


@pytest.mark.parametrize("model", MODELS)
def test_the_local_host_reports_the_same_error(runs, model):
    (_, _, errors), (_, _, host_errors) = runs
    assert host_errors[model] == errors[model]
    assert (errors[model] is not None) == (model in FAILING)


@pytest.mark.parametrize("model", MODELS)
def test_the_local_host_reports_the_same_warnings(runs, model):
    (_, warnings, _), (_, host_warnings, _) = runs
    assert host_warnings[model] == warnings[model]


@pytest.mark.parametrize("model", [m for m in MODELS if m not in FAILING])
def test_the_local_host_lands_the_same_table(runs, model):
    (tables, _, _), (host_tables, _, _) = runs
    assert host_tables[model] == tables[model]
    assert tables[model]


def test_the_subset_answers_what_each_case_is_expected_to_say(runs):
    first, second = runs
    assert_expected(first)
    assert_expected(second)
    assert set(first[0]) == set(second[0]) == set(MODELS)
