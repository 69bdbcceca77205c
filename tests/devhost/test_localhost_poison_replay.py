"""Poison through the local host: a source failing every request goes to `-poison` after
maxDequeueCount deliveries, the status route counts it, and once the fault is gone
`main.py poison replay` re-runs it and the run completes with every record."""
from __future__ import annotations

import json
import uuid

from click.testing import CliRunner
from sqlalchemy import text

from cli.main import cli
from devhost import LocalHost, QueueSettings, load_app
from functions import common
from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain.names import FETCH_POISON, PAGINATE_POISON, STORAGE_SETTING
from shared.storage.queues import AzureQueueStore
from tests.helpers.app import empty
from tests.helpers.chain import applied_target
from tests.helpers.devhost import call
from tests.helpers.flow import TEST_KEY, project_for

# the host's maxDequeueCount must be the one the functions tell the chain (host.json = common.MAX_DEQUEUE_COUNT)
FAST = QueueSettings(batch_size=8, max_dequeue_count=common.MAX_DEQUEUE_COUNT, visibility_timeout=0.0,
                     max_polling_interval=0.2)


def test_poisoned_pages_are_reported_and_replayed(azurite, tmp_path, monkeypatch):
    source = f"kt_poison_{uuid.uuid4().hex[:6]}"
    # /v1/flaky fails the first N requests of every distinct page, then answers: a fault that "gets fixed"
    model = {"path": "/v1/flaky", "records": "data", "params": {"fail": common.MAX_DEQUEUE_COUNT, "per_page": 20},
             "primary_key": ["id"],
             "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"},
             "columns": {"id": {"type": "integer"}}}
    with SampleApi(ApiConfig(customers=60)) as api:
        project = project_for(tmp_path, {source: {"type": "api", "base_url": api.base_url,
                                                  "throttle": {"max_retries": 0}, "models": {"m": model}}},
                              {"storage": {"root": str(tmp_path / "storage")}})
        target = tmp_path / "target.db"
        engine = applied_target(project, target)
        for name, value in {STORAGE_SETTING: azurite.connection_string,
                            "KSPYDER_MANIFESTS": str(tmp_path / "manifests"),
                            "KSPYDER_PII_KEY": TEST_KEY, "KSPYDER_TARGET_URL": f"sqlite:///{target}",
                            "KSPYDER_HOST_KEY": "k", "KSPYDER_SCHEDULE": "0 */5 * * * *"}.items():
            monkeypatch.setenv(name, value)
        queues = AzureQueueStore.from_connection_string(azurite.connection_string)
        empty(queues)
        for poison_queue in (PAGINATE_POISON, FETCH_POISON):
            while batch := queues.receive(poison_queue, 32, 30):
                for message in batch:
                    queues.delete(poison_queue, message)
        host = LocalHost(load_app(), settings=FAST, workers=2)
        base = f"http://127.0.0.1:{host.start_http(port=0)}/api"
        runner = CliRunner()
        try:
            status, _, body = call(f"{base}/runs", "POST", json.dumps({"models": [source]}).encode(),
                                   {"x-functions-key": "k", "Content-Type": "application/json"})
            run_id = json.loads(body)["run_id"]
            host.run_queues(once=True, timeout=60)
            report = json.loads(call(f"{base}/runs/{run_id}?code=k")[2])
            assert report["done"] is False and report["poison"]["run"] == 1      # page 0, failed every delivery
            assert runner.invoke(cli, ["poison", "list", "paginate"]).stdout.count(run_id) == 1
            # page 0 now answers; the fanned-out pages fail N times each, then answer
            for queue in ("paginate", "fetch"):
                replayed = runner.invoke(cli, ["poison", "replay", queue, "--run", run_id])
                assert replayed.exit_code == 0, replayed.output
                host.run_queues(once=True, timeout=60)
            report = json.loads(call(f"{base}/runs/{run_id}?code=k")[2])
            assert report["done"] is True, report
            with engine.connect() as connection:
                assert connection.execute(text(f"SELECT COUNT(*) FROM {source}.m")).scalar_one() == 60
        finally:
            host.stop()
            common.dispose_engines()
            empty(queues)
            engine.dispose()
