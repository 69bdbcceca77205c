"""The queue chain under leases (shared/chain/leasing.py), driven in process on local storage and
queues against the sample API and a SQLite target: a model another run holds is re-queued, not
failed, and loaded once the lease is free; the lease is released when the model finishes; two
runs of a keyless model started together land one run's rows; a run whose heartbeat expired
shows `abandoned`, and `running` again once its messages are handled."""
from __future__ import annotations

import time

import pytest

from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain import Chain, decode
from shared.chain.names import PAGINATE
from shared.chain.pump import drain
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from shared.target.lease import Leases
from tests.helpers.chain import (
    API_COUNTS,
    RecordingQueues,
    applied_target,
    build_project,
    reference_snapshot,
    snapshot,
)

MODEL = "shop.countries"   # keyless: replaced per run


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(**API_COUNTS)) as server:
        yield server


@pytest.fixture
def chain_parts(tmp_path, api):
    project = build_project(tmp_path, api.base_url, shop=["countries", "customers"], erp=[])
    blobs = LocalBlobStore(tmp_path / "blobs")
    queues = RecordingQueues(LocalQueueStore(tmp_path / "queues"))
    engine = applied_target(project, tmp_path / "chain.db")
    yield project, blobs, queues, engine
    engine.dispose()


def make_chain(parts, clock=time.time):
    project, blobs, queues, engine = parts
    return lambda: Chain(project, blobs, queues, lambda: engine, clock)


def paginates(queues, model=MODEL):
    return [(decode(body), delay) for q, body, delay in queues.sent if q == PAGINATE and body.get("model") == model]


def test_a_model_another_run_holds_is_requeued_then_loaded_once_free(tmp_path, chain_parts):
    project, blobs, queues, engine = chain_parts
    chain = make_chain(chain_parts)
    leases = Leases(engine, project.settings.leases.ttl_seconds)
    leases.acquire([MODEL], "other-run", "an embedded run")
    with chain() as c:
        run_id = c.start_run([MODEL], trigger="timer")
    drain(chain, queues, until=lambda: len(paginates(queues)) >= 3, timeout=30)
    [(first, _), *again] = paginates(queues)
    assert all(msg == first for msg, _ in again)   # the same message (run, model, token), later
    assert all(delay == pytest.approx(project.settings.leases.ttl_seconds / 3, abs=1) for _, delay in again)
    with chain() as c:
        status = c.run_status(run_id)
    assert status["status"] == "running" and status["errors"] == []
    assert status["models"][MODEL]["fetched"] == 0 and not status["models"][MODEL]["done"]
    assert leases.get(MODEL).run_id == "other-run"

    leases.release([MODEL], "other-run")
    drain(chain, queues, timeout=30)
    with chain() as c:
        status = c.run_status(run_id)
    assert status["status"] == "succeeded" and status["models"][MODEL]["done"], status
    assert leases.get(MODEL) is None   # released by the load that finished the model
    assert snapshot(engine, project)[MODEL] == reference_snapshot(project, tmp_path)[MODEL]


def test_two_runs_of_a_keyless_model_started_together_land_one_runs_rows(tmp_path, chain_parts):
    project, blobs, queues, engine = chain_parts
    chain = make_chain(chain_parts)
    with chain() as c:
        timer = c.start_run([MODEL], trigger="timer")
    with chain() as c:
        oneshot = c.start_run([MODEL], trigger="http")
    drain(chain, queues, timeout=60)
    with chain() as c:
        assert [c.run_status(r)["status"] for r in (timer, oneshot)] == ["succeeded", "succeeded"]
    assert len(paginates(queues)) > 2   # the later run waited for the earlier one's lease
    assert snapshot(engine, project)[MODEL] == reference_snapshot(project, tmp_path)[MODEL]
    assert Leases(engine, 60).get(MODEL) is None


def test_a_run_whose_heartbeat_expired_is_abandoned_until_its_messages_come(tmp_path, chain_parts):
    project, blobs, queues, engine = chain_parts
    ttl = project.settings.leases.ttl_seconds
    with make_chain(chain_parts, clock=lambda: time.time() - 10 * ttl)() as c:   # queued long ago
        run_id = c.start_run(["shop.customers"], trigger="timer")
        assert c.run_status(run_id)["status"] == "abandoned"
    chain = make_chain(chain_parts)
    drain(chain, queues, until=lambda: bool(paginates(queues, "shop.customers")) and
          queues.peek_count(PAGINATE) == 0, timeout=30, only=(PAGINATE,))
    with chain() as c:
        assert c.run_status(run_id)["status"] == "running"   # its Paginate ran: alive again
    drain(chain, queues, timeout=30)
    with chain() as c:
        assert c.run_status(run_id)["status"] == "succeeded"
