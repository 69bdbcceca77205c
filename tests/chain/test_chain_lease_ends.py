"""Every way a queue chain model ends gives its lease back (shared/chain/leasing.py): a model failed
by the stated-total check, a step poisoned on its last attempt; a Transform whose output table
another run holds is sent again later rather than failed; a replayed poisoned message takes the
model's lease again, or is refused by name while another run holds it."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from azure.functions.queue import QueueMessage

from functions import common
from functions import transform as transform_module
from functions.transform import transform
from shared.chain.messages import TransformEvent, decode, encode
from shared.chain.names import LOAD_POISON, TRANSFORM
from shared.chain.poison import replay
from shared.chain.pump import drain
from shared.config.project_cache import ProjectCache
from shared.load.loader import Loader, LoadError
from shared.storage.queues import LocalQueueStore
from shared.target.lease import Leases
from shared.transform.runner import TransformError
from tests.helpers.chain import Harness, RecordingQueues
from tests.helpers.flow import project_for
from tests.helpers.http_stub import Reply, StubServer
from tests.helpers.jira import SHORT, CappedApi, chain_harness
from tests.helpers.transform import PIPELINES, Target

MODEL = "jira.issues"


def test_a_model_failed_by_the_stated_total_releases_its_lease(tmp_path, harness_for):  # noqa: F811
    with StubServer(handler=CappedApi(stated=SHORT)) as server:
        harness = chain_harness(tmp_path, harness_for, server.url(""), "offset_stated")
        run_id = harness.run()
    assert harness.status(run_id)["status"] == "failed"
    assert Leases(harness.engine, harness.project.settings.leases.ttl_seconds).get(MODEL) is None


# ---------------------------------------------------------------- poisoned, then replayed
TEAM = "crm.people"


@pytest.fixture
def one_page_api():
    """One page of five people, no pagination: the model's one Load is the one to poison."""
    people = [{"id": i, "team": f"team {i % 2}"} for i in range(5)]
    with StubServer(handler=lambda seen: Reply(body={"data": people})) as server:
        yield server


@pytest.fixture
def poisoned(tmp_path, one_page_api, monkeypatch):
    """A run whose one Load failed on every allowed attempt (the database refused it), so the host
    moved it to the poison queue; the fault is then fixed. Yields (harness, run_id, held): `held`
    lists the lease holder seen by every load that reached the database."""
    project = project_for(tmp_path, {"crm": {"type": "api", "base_url": one_page_api.url(""), "models": {
        "people": {"path": "/people", "records": "data", "primary_key": ["id"],
                   "columns": {"id": {"type": "integer"}, "team": {"type": "string", "pii": "none",
                                                                   "reason": "a team name"}}}}}},
                          {"storage": {"root": str(tmp_path / "storage")}})
    harness = Harness(tmp_path / "chain", project, max_dequeue_count=2)
    ttl = project.settings.leases.ttl_seconds
    failing, held = [True], []
    load_page = Loader.load_page

    def failing_load(self, index, records):
        if failing[0]:
            raise LoadError(f"{TEAM}: the target refused the page")
        held.append(Leases(harness.engine, ttl).get(TEAM))
        return load_page(self, index, records)

    monkeypatch.setattr(Loader, "load_page", failing_load)
    run_id = harness.run(visibility_timeout=0, max_dequeue_count=2)
    assert harness.queues.peek_count(LOAD_POISON) == 1
    failing[0] = False
    yield harness, run_id, held
    harness.engine.dispose()


def rows(harness) -> int:
    with harness.engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT COUNT(*) FROM {TEAM}")).scalar_one()


def test_a_poisoned_step_releases_its_lease(poisoned):
    harness, run_id, _ = poisoned
    status = harness.status(run_id)
    assert status["status"] == "failed" and status["poison"]["run"] == 1
    assert Leases(harness.engine, 60).get(TEAM) is None


def test_a_replayed_load_takes_the_lease_again_and_gives_it_back_at_the_end(poisoned):
    harness, run_id, held = poisoned
    assert replay(harness.queues, "load", run_id) == 1
    drain(harness.chain, harness.queues, timeout=30, visibility_timeout=0, max_dequeue_count=2)
    assert [lease.run_id if lease else None for lease in held] == [run_id]   # the replay loaded under the lease
    assert harness.status(run_id)["status"] == "succeeded" and rows(harness) == 5
    assert Leases(harness.engine, 60).get(TEAM) is None   # released when the model finished


def test_a_replayed_load_is_refused_while_another_run_holds_the_lease(poisoned):
    harness, run_id, held = poisoned
    leases = Leases(harness.engine, harness.project.settings.leases.ttl_seconds)
    leases.acquire([TEAM], "other-run", "an embedded run")
    assert replay(harness.queues, "load", run_id) == 1
    drain(harness.chain, harness.queues, timeout=30, visibility_timeout=0, max_dequeue_count=2)
    assert held == [] and rows(harness) == 0   # never written
    [error] = harness.status(run_id)["errors"]
    assert error["step"] == "load" and error["poisoned"]
    assert f"{TEAM}: run other-run (an embedded run) holds the table's lease until" in error["message"]
    assert f"this step of run {run_id} was not run" in error["message"]
    assert leases.get(TEAM).run_id == "other-run"
    assert harness.queues.peek_count(LOAD_POISON) == 1   # poisoned again, for a later replay


# ---------------------------------------------------------------- a transform's leased output
@pytest.fixture
def transform_target(tmp_path, monkeypatch):
    target = Target(f"sqlite:///{tmp_path / 'target.db'}", tmp_path)
    monkeypatch.setattr(common, "projects", ProjectCache())
    monkeypatch.setenv("KSPYDER_MANIFESTS", str(tmp_path))
    monkeypatch.setenv("KSPYDER_TARGET_URL", target.url)
    monkeypatch.setenv("KSPYDER_STATE_DIR", str(tmp_path / "state"))
    queues = RecordingQueues(LocalQueueStore(tmp_path / "queues"))
    monkeypatch.setattr(transform_module, "stores", lambda: (None, queues))
    target.apply()
    target.insert()
    yield target, queues
    common.dispose_engines()
    target.drop()


def output_runs(target, table: str) -> list[str]:
    with target.engine.connect() as connection:
        return connection.execute(sa.text(f"SELECT DISTINCT _kspyder_run_id FROM {target.out}.{table}")).scalars().all()


def test_a_transform_whose_output_another_run_holds_is_sent_again_later(transform_target):
    target, queues = transform_target
    ttl = target.project.settings.leases.ttl_seconds
    event = TransformEvent("run-erp", (target.erp,))

    def deliver(body) -> None:
        transform(QueueMessage(id="m", body=json.dumps(body).encode(), dequeue_count=1, pop_receipt="r"))

    leases = Leases(target.engine, ttl)
    leases.acquire([f"{target.out}.paid_orders"], "other-run", "an embedded run")
    deliver(encode(event))   # no exception: the queue does not count it as a failed attempt
    [(queue, body, delay)] = queues.sent
    assert queue == TRANSFORM and decode(body) == event
    assert 1 <= delay <= ttl / 3
    assert output_runs(target, "paid_orders") == [] and output_runs(target, "statuses") == ["run-erp"]

    leases.release([f"{target.out}.paid_orders"], "other-run")
    deliver(body)
    assert len(queues.sent) == 1   # done: nothing sent again
    assert output_runs(target, "paid_orders") == ["run-erp"]


def test_a_transform_with_a_real_failure_besides_a_leased_output_fails_for_the_queue_to_retry(transform_target):
    target, queues = transform_target
    target.write(PIPELINES.replace('      - filter: "status == \'paid\'"\n',
                                   '      - filter: "status == \'paid\'"\n      - cast: {{status: integer}}\n'))
    Leases(target.engine, 60).acquire([f"{target.out}.statuses"], "other-run", "an embedded run")
    body = json.dumps(encode(TransformEvent("run-bad", (target.erp,)))).encode()
    with pytest.raises(TransformError, match="2 of 4 pipelines failed"):
        transform(QueueMessage(id="m", body=body, dequeue_count=1, pop_receipt="r"))
    assert queues.sent == []
