"""At-least-once delivery through the local host (4 workers, Azurite): the chain must land exactly
what the embedded run lands and send exactly one transform event per run,
(a) when every chain message is delivered twice: each send of `Chain.send` to paginate/fetch/load
    is doubled (a duplicate arriving later, possibly on another worker at the same time) and
    each invocation of those queue functions runs twice on the same message (a redelivery);
(b) when a Load dies between its upsert and its ledger write (`RunLedger.page(..., "loaded")`
    raises once) and the host redelivers the message.
The transform event is counted at the transform function itself (spied as in
test_localhost_postgres_e2e), not on the queue. The transform queue is not doubled: its one event
is what the chain promises, and the transform function's own idempotence is another issue's."""
from __future__ import annotations

import json
import threading

import pytest

from devhost import LocalHost, QueueSettings, load_app
from functions import common
from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain.messages import decode
from shared.chain.names import FETCH, LOAD, PAGINATE, STORAGE_SETTING, TRANSFORM
from shared.chain.steps import Chain
from shared.ledger import RunLedger
from shared.storage.queues import AzureQueueStore
from tests.helpers.app import empty
from tests.helpers.chain import API_COUNTS, applied_target, build_project, reference_snapshot, snapshot
from tests.helpers.devhost import call
from tests.helpers.flow import TEST_KEY

FAST = QueueSettings(batch_size=8, max_dequeue_count=common.MAX_DEQUEUE_COUNT, visibility_timeout=0.0,
                     max_polling_interval=0.2)
CHAIN_QUEUES = (PAGINATE, FETCH, LOAD)


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(**API_COUNTS)) as server:
        yield server


class Hosted:
    """A project over the sample API (page_number fan-out, next_link, one page) and the sample SQL
    database, its applied SQLite target, the reference snapshot and the local host on Azurite."""

    def __init__(self, azurite, api, tmp_path, monkeypatch):
        self.project = build_project(tmp_path, api.base_url, shop=["customers", "events", "countries"],
                                     erp=["orders", "lines_flat"], throttle={})
        self.expected = reference_snapshot(self.project, tmp_path)
        target = tmp_path / "target.db"
        self.engine = applied_target(self.project, target)
        for name, value in {STORAGE_SETTING: azurite.connection_string,
                            "KSPYDER_MANIFESTS": str(tmp_path / "manifests"),
                            "KSPYDER_PII_KEY": TEST_KEY, "KSPYDER_TARGET_URL": f"sqlite:///{target}",
                            "KSPYDER_HOST_KEY": "k", "KSPYDER_SCHEDULE": "0 */5 * * * *"}.items():
            monkeypatch.setenv(name, value)
        self.queues = AzureQueueStore.from_connection_string(azurite.connection_string)
        empty(self.queues)
        self.host = LocalHost(load_app(), settings=FAST, workers=4)
        self.base = f"http://127.0.0.1:{self.host.start_http(port=0)}/api"
        self.events = []
        self._lock = threading.Lock()

        def spy(real):
            def transform(msg):
                with self._lock:
                    self.events.append(decode(msg.get_json()))
                return real(msg)
            return transform

        self.patch(TRANSFORM, spy)

    def function(self, queue: str):
        return next(t for t in self.host.queue_triggers if queue in t.functions).functions[queue]

    def patch(self, queue: str, wrap) -> None:
        trigger = self.function(queue)
        object.__setattr__(trigger, "function", wrap(trigger.function))

    def run(self) -> str:
        status, _, body = call(f"{self.base}/runs", "POST", json.dumps({"models": ["shop", "erp"]}).encode(),
                               {"x-functions-key": "k", "Content-Type": "application/json"})
        assert status == 202, body
        run_id = json.loads(body)["run_id"]
        self.host.run_queues(once=True, timeout=60)
        return run_id

    def report(self, run_id: str) -> dict:
        status, _, body = call(f"{self.base}/runs/{run_id}?code=k")
        assert status == 200, body
        return json.loads(body)

    def close(self) -> None:
        self.host.stop()
        common.dispose_engines()
        empty(self.queues)
        self.engine.dispose()


@pytest.fixture
def hosted(azurite, api, tmp_path, monkeypatch):
    made = Hosted(azurite, api, tmp_path, monkeypatch)
    yield made
    made.close()


def test_every_message_delivered_twice_lands_once(hosted, monkeypatch):
    sent = {q: 0 for q in CHAIN_QUEUES}
    invoked = {q: 0 for q in CHAIN_QUEUES}
    lock = threading.Lock()
    real_send = Chain.send

    def send_twice(self, queue, message, delay=0.0):
        real_send(self, queue, message, delay)
        if queue in CHAIN_QUEUES:
            with lock:
                sent[queue] += 1
            real_send(self, queue, message, delay)    # the duplicate, a separate queue message

    monkeypatch.setattr(Chain, "send", send_twice)

    def twice(queue):
        def wrap(real):
            def function(msg):
                with lock:
                    invoked[queue] += 1
                real(msg)
                real(msg)                               # the same message again: a redelivery
            return function
        return wrap

    for queue in CHAIN_QUEUES:
        hosted.patch(queue, twice(queue))
    run_id = hosted.run()
    assert snapshot(hosted.engine, hosted.project) == hosted.expected
    assert [e.run_id for e in hosted.events] == [run_id]
    # every chain message really went out twice and each copy was handled
    assert all(sent[q] > 0 and invoked[q] >= 2 * sent[q] for q in CHAIN_QUEUES), (sent, invoked)
    report = hosted.report(run_id)
    assert report["done"] is True and report["errors"] == [], report
    assert all(m["planned"] == m["loaded"] for m in report["models"].values()), report["models"]


def test_load_killed_between_upsert_and_ledger_write_is_redelivered(hosted, monkeypatch):
    original = RunLedger.page
    killed = []
    lock = threading.Lock()

    def crash_once(self, run_id, model, index, stage, records):
        if stage == "loaded" and model == "shop.customers" and index == 2:
            with lock:
                first = not killed
                killed.append(index)
            if first:
                raise ConnectionError("the instance died")
        return original(self, run_id, model, index, stage, records)

    monkeypatch.setattr(RunLedger, "page", crash_once)
    run_id = hosted.run()
    assert killed == [2, 2]           # the failed delivery and the host's redelivery
    assert hosted.host.queue_triggers[0].stats.failed.get(LOAD) == 1
    assert snapshot(hosted.engine, hosted.project) == hosted.expected
    assert [e.run_id for e in hosted.events] == [run_id]
    report = hosted.report(run_id)
    assert report["done"] is True and report["errors"] == [], report   # recorded while failing, then cleared
