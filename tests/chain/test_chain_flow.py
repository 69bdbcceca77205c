"""The queue chain driven by hand on local storage and queues, against the sample API, the sample
SQL database and a SQLite target: the chain must land exactly what the embedded run lands, however
often each message is delivered, and must never sleep on a 429."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import requests

from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain import Chain, LoadJob, PageJob, RunModel, decode, encode
from shared.chain.messages import check_start, new_token
from shared.chain.names import FETCH, FETCH_POISON, LOAD, LOAD_POISON, PAGINATE, PAGINATE_POISON, RAW
from shared.chain.pages import start_blob_name
from shared.chain.pump import drain, handle_once
from shared.chain.sealed import MARK, unseal
from shared.extract.api import new_client
from shared.extract.http_client import HttpClient
from shared.ledger import RunLedger
from shared.load.loader import Loader, LoadError, TargetDriftError
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from tests.helpers.chain import (
    API_COUNTS,
    RATE,
    Harness,
    build_project,
    reference_snapshot,
    snapshot,
    transform_events,
)
from tests.helpers.flow import TEST_KEY


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(**API_COUNTS)) as server:
        yield server


def test_every_pagination_and_sql_lands_what_the_embedded_run_lands(tmp_path, api, harness_for):
    project = build_project(tmp_path, api.base_url)
    expected = reference_snapshot(project, tmp_path)
    harness = harness_for(project)
    run_id = harness.run()

    assert snapshot(harness.engine, project) == expected
    assert {m: len(rows) for m, rows in expected.items()} == {
        "shop.customers": 130, "shop.products": 70, "shop.orders": 55, "shop.events": 70, "shop.tickets": 70,
        "shop.countries": len(requests.get(f"{api.base_url}/v1/countries", timeout=30).json()),
        "erp.orders": 40, "erp.lines": len(expected["erp.lines_flat"]), "erp.lines_flat": len(expected["erp.lines"])}
    [event] = transform_events(harness.queues)
    assert event.run_id == run_id and event.sources == ("erp", "shop") and len(event.models) == 9

    status = harness.status(run_id)
    assert status["done"] and status["transform_sent"] and status["errors"] == [] and status["poison"]["run"] == 0
    modes = {m: (s["mode"], s["planned"]) for m, s in status["models"].items()}
    assert modes == {"shop.customers": ("parallel", 6), "shop.products": ("parallel", 3),
                     "shop.orders": ("sequential", 3), "shop.events": ("sequential", 4),
                     "shop.tickets": ("sequential", 3), "shop.countries": ("sequential", 1),
                     "erp.orders": ("sequential", 3), "erp.lines": ("sequential", modes["erp.lines"][1]),
                     "erp.lines_flat": ("stream", modes["erp.lines_flat"][1])}
    assert all(s["planned"] == s["fetched"] == s["loaded"] and s["done"] for s in status["models"].values())

    # random access with a stated total: all pages enqueued by the first page's fetch, page k made
    # visible k/rate later; the run reads 6 models of `shop`, which share its rate: k*6/rate
    fanned = sorted((job.index, delay) for job, delay in harness.sent(FETCH, "shop.customers"))
    assert fanned == [(k, pytest.approx(k * 6 / RATE)) for k in range(1, 6)]
    # and the source's models start 1/rate apart
    starts = sorted(delay for job, delay in harness.sent(PAGINATE) if job.model.startswith("shop."))
    assert starts == [pytest.approx(i / RATE) for i in range(6)]
    # sequential styles: one job per page, each sent by the previous page's fetch, at once
    chained = harness.sent(FETCH, "shop.events")
    assert [(job.index, job.follow, delay) for job, delay in chained] == [(1, True, 0.0), (2, True, 0.0),
                                                                         (3, True, 0.0)]
    # what the response or the source gave (a next link, a chunk's last key) waits in a start blob
    # the job names by digest, never in the message
    def started(job: PageJob) -> dict:
        sealed = harness.blobs.get(RAW, start_blob_name(run_id, job.model, job.index, job.start))
        assert sealed.startswith(MARK)   # sealed with the PII key's derived key: unreadable in storage
        return check_start(json.loads(unseal(sealed, TEST_KEY)))
    # the paginator's saved state: its next link, its loop detection's digests and its page count
    states = [started(job)["paginator"] for job, _ in chained]
    assert all(job.request is None for job, _ in chained)
    assert all(s["next_url"].startswith(api.base_url) for s in states)
    assert [(s["pages_seen"], len(s["seen"])) for s in states] == [(1, 2), (2, 3), (3, 4)]
    sql_jobs = harness.sent(FETCH, "erp.orders")
    assert [started(job) for job, _ in sql_jobs] == [{"sql_after": ["SO-000016"]}, {"sql_after": ["SO-000032"]}]

    # claim-check: load jobs name blobs; raw pages hold no PII
    loads = harness.sent(LOAD, "shop.customers")
    assert sorted(job.blob for job, _ in loads) == [f"{run_id}/shop/customers/{i:06d}.jsonl" for i in range(6)]
    assert [job.last for job, _ in sorted(loads, key=lambda x: x[0].index)] == [False] * 5 + [True]
    raw = "".join(harness.blobs.get(RAW, name).decode() for name in harness.blobs.list(RAW, run_id))
    emails = [c["email"] for page in range(1, 7)
              for c in requests.get(f"{api.base_url}/v1/customers", params={"page": page, "per_page": 25},
                                      timeout=30).json()["data"]]
    assert emails and not any(e in raw for e in emails)
    assert all(len(json.dumps(body)) < 2000 for _, body, _ in harness.queues.sent)


def delivered_twice(harness: Harness):
    """A dispatch that handles each message twice in a row (a redelivery) and enqueues its copy
    once more (a duplicate arriving later)."""
    copied: set[str] = set()

    def twice(chain, queue, message):
        handle_once(chain, queue, message)
        handle_once(chain, queue, message)
        key = json.dumps(message.body, sort_keys=True)
        if key not in copied:
            copied.add(key)
            harness.queues.inner.send(queue, message.body)
    return twice


def test_duplicate_delivery_of_every_message_changes_nothing(tmp_path, api, harness_for):
    """Each message is handled twice in a row (a redelivery) and its copy is enqueued again (a
    duplicate arriving later): same tables, one transform event, no page loaded twice."""
    project = build_project(tmp_path, api.base_url, shop=["customers", "events", "countries"],
                            erp=["orders", "lines_flat"])
    expected = reference_snapshot(project, tmp_path)
    harness = harness_for(project)
    api.reset()
    run_id = harness.run(dispatch=delivered_twice(harness))
    assert snapshot(harness.engine, project) == expected
    # a redelivered fetch finds its page done and only repeats the hand-off: no second request
    assert api.stats()["requests"]["by_path"] == {"/v1/customers": 6, "/v1/events": 4, "/v1/countries": 1}
    assert [e.run_id for e in transform_events(harness.queues)] == [run_id]
    status = harness.status(run_id)
    assert status["done"] and status["errors"] == []
    assert all(s["planned"] == s["loaded"] for s in status["models"].values())


def test_load_killed_between_upsert_and_ledger_write_is_redone(tmp_path, api, harness_for, monkeypatch):
    project = build_project(tmp_path, api.base_url, shop=["customers", "countries"], erp=["orders"])
    expected = reference_snapshot(project, tmp_path)
    harness = harness_for(project)
    original = RunLedger.page
    killed = []

    def crash_once(self, run_id, model, index, stage, records):
        if stage == "loaded" and not killed and model == "shop.customers" and index == 2:
            killed.append((model, index))
            raise ConnectionError("the instance died")
        return original(self, run_id, model, index, stage, records)

    monkeypatch.setattr(RunLedger, "page", crash_once)
    run_id = harness.run(visibility_timeout=1)
    assert killed == [("shop.customers", 2)]
    assert snapshot(harness.engine, project) == expected
    assert [e.run_id for e in transform_events(harness.queues)] == [run_id]
    assert harness.status(run_id)["errors"] == []   # recorded while failing, cleared by the redelivery


def failing_sleep(seconds):
    raise AssertionError(f"a chain step slept {seconds}s")


def no_sleep_client(source_name, source) -> HttpClient:
    client = new_client(source_name, source, on_rate_limit="raise")
    client._sleep = client.bucket._sleep = failing_sleep
    return client


def test_429_sends_the_job_back_with_retry_after_and_never_sleeps(tmp_path, monkeypatch, harness_for):
    with SampleApi(ApiConfig(customers=100, rate=0.001, burst=1)) as slow_api:
        # a server asking for more than max_backoff fails the model: this one is allowed 1000 s
        project = build_project(tmp_path, slow_api.base_url, shop=["customers"], erp=[],
                                throttle={"max_backoff": 1000})
        harness = harness_for(project, client_factory=no_sleep_client)
        monkeypatch.setattr(time, "sleep", failing_sleep)
        with harness.chain() as chain:
            run_id = chain.start_run(["shop"])
            [message] = harness.queues.receive(PAGINATE)
            chain.handle(PAGINATE, message.body)              # page 0 takes the only token
            jobs = harness.sent(FETCH)
            assert [job.index for job, _ in jobs] == [1, 2, 3] and all(d == 0 for _, d in jobs)  # no rate: no spread
            page1 = jobs[0][0]
            chain.fetch(page1)                                 # 429, Retry-After 1000 s
        (again, delay), = harness.sent(FETCH)[3:]
        assert delay == 1000 and again == PageJob(**{**page1.__dict__, "attempt": 1})
        assert slow_api.stats()["throttled"] == 1
        assert harness.status(run_id)["errors"] == []


def test_429s_across_a_run_are_rescheduled_and_everything_arrives(tmp_path, monkeypatch, harness_for):
    with SampleApi(ApiConfig(customers=100, rate=2, burst=2)) as limited:
        project = build_project(tmp_path, limited.base_url, shop=["customers"], erp=[], throttle={})
        expected = reference_snapshot(project, tmp_path)
        harness = harness_for(project, honor_delays=True, client_factory=no_sleep_client)
        limited.reset()
        monkeypatch.setattr(time, "sleep", failing_sleep)
        harness.run()
        assert snapshot(harness.engine, project) == expected
        throttled = [(job.index, job.attempt, delay) for job, delay in harness.sent(FETCH) if job.attempt]
        assert throttled and all(delay == 1 for _, _, delay in throttled)   # the server's Retry-After
        assert limited.stats()["throttled"] == len(throttled)


@pytest.mark.parametrize("model", [
    {"path": "/v1/loop/cursor", "records": "data", "pagination": {"type": "cursor", "cursor_path": "next_cursor"}},
    {"path": "/v1/loop/next_link", "records": "data", "pagination": {"type": "next_link", "next_path": "next"}},
    {"path": "/v1/loop/page", "records": "data", "params": {"per_page": 10},
     "pagination": {"type": "page_number"}},
], ids=["cursor", "next_link", "page_number"])
def test_a_looping_api_is_caught_across_invocations_and_poisons_the_page(tmp_path, api, harness_for, model):
    from tests.helpers.flow import project_for
    project = project_for(tmp_path, {"loop": {"type": "api", "base_url": api.base_url, "models": {
        "m": {**model, "primary_key": ["id"], "columns": {"id": {"type": "integer"}}}}}})
    harness = harness_for(project, max_dequeue_count=2)
    run_id = harness.run(visibility_timeout=1, max_dequeue_count=2)
    status = harness.status(run_id)
    [error] = status["errors"]
    # a next link back to the same URL is caught by the paginator inside the first page's fetch;
    # a cursor or a page that repeats only shows on the second page, in another invocation
    step, queue = ("paginate", PAGINATE_POISON) if error["index"] == 0 else ("fetch", FETCH_POISON)
    assert error["step"] == step and error["poisoned"] and error["dequeue_count"] == 2
    assert error["index"] == (0 if "next_link" in model["path"] else 1)
    assert "PaginationError" in error["message"] and ("looping" in error["message"] or "repeats" in error["message"])
    assert status["status"] == "failed" and not status["done"]
    assert status["poison"]["run"] == 1 and status["poison"]["queues"][queue] == 1
    [poisoned] = harness.queues.receive(queue)
    assert decode(poisoned.body).run_id == run_id


def test_a_keyless_model_is_replaced_once_per_run(tmp_path, api, harness_for):
    project = build_project(tmp_path, api.base_url, shop=["countries"], erp=["lines_flat"])
    harness = harness_for(project)
    harness.run()
    second = harness.run()
    with harness.engine.connect() as connection:
        for table in ("shop.countries", "erp.lines_flat"):
            runs = connection.exec_driver_sql(f"SELECT DISTINCT _kspyder_run_id FROM {table}").scalars().all()
            assert runs == [second]
    assert snapshot(harness.engine, project) == reference_snapshot(project, tmp_path)


def test_start_refuses_an_unapplied_target_and_status_of_an_unknown_run_is_none(tmp_path, api):
    project = build_project(tmp_path, api.base_url, shop=["countries"], erp=[])
    queues = LocalQueueStore(tmp_path / "queues")
    with Chain(project, LocalBlobStore(tmp_path / "blobs"), queues) as chain:
        with pytest.raises(TargetDriftError, match="does not exist"):
            chain.start_run()
        assert queues.peek_count(PAGINATE) == 0
        assert chain.run_status("20260101T000000Z-000000") is None


def test_handle_checks_the_queue_and_the_message(tmp_path, api):
    project = build_project(tmp_path, api.base_url, shop=["countries"], erp=[])
    with Chain(project, LocalBlobStore(tmp_path / "b"), LocalQueueStore(tmp_path / "q")) as chain:
        wrong = encode(RunModel("r1", "shop.countries"))
        with pytest.raises(Exception, match="kspyder-load: expected a LoadJob, not a RunModel"):
            chain.handle(LOAD, wrong)
        with pytest.raises(Exception, match="LoadJob.records: expected an integer"):
            chain.handle(LOAD, {**encode(LoadJob("r1", "shop.countries", 0, "r1/shop/countries/000000.jsonl", 1)),
                                "records": "many"})


def test_loads_racing_to_the_finish_send_one_transform_event(tmp_path, api, harness_for, monkeypatch):
    """Every load of the run (and a resent copy of each, as a crashed fetch would send) runs on its
    own thread, and the loads that won their page hold their ledger write until all of them are
    there: they all finish at once, each may see the run complete, one transform event goes out."""
    project = build_project(tmp_path, api.base_url, shop=["customers", "countries"], erp=[])
    harness = harness_for(project)
    with harness.chain() as chain:
        run_id = chain.start_run()
    drain(harness.chain, harness.queues, only=(PAGINATE, FETCH))
    jobs = []
    while batch := harness.queues.receive(LOAD, 32, 60):
        jobs += [decode(m.body) for m in batch]
    assert len(jobs) == 7
    together = threading.Barrier(len(jobs), timeout=20)
    original = RunLedger.page

    def at_once(self, run_id, model, index, stage, records):
        if stage == "loaded":
            together.wait()
        return original(self, run_id, model, index, stage, records)

    monkeypatch.setattr(RunLedger, "page", at_once)
    jobs += [replace(job, token=new_token()) for job in jobs]

    def load(job):
        with harness.chain() as chain:
            chain.load(job)

    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(load, jobs))
    assert [e.run_id for e in transform_events(harness.queues)] == [run_id]
    assert {m: len(rows) for m, rows in snapshot(harness.engine, project).items()} == {
        "shop.customers": 130, "shop.countries": len(requests.get(f"{api.base_url}/v1/countries", timeout=30).json())}
    assert harness.status(run_id)["done"]


def test_a_poisoned_load_replayed_after_the_fix_completes_the_run(tmp_path, api, harness_for, monkeypatch):
    """What `poison replay` will do: send the poisoned body back to its queue. It keeps its token,
    so it still owns its page; the run goes from failed to succeeded with one transform event."""
    project = build_project(tmp_path, api.base_url, shop=["customers"], erp=[])
    expected = reference_snapshot(project, tmp_path)
    harness = harness_for(project, max_dequeue_count=2)
    original = Loader.load

    def broken(self, records):
        if self.ref.qualified == "shop.customers" and records and records[0]["id"] == 51:   # page 2
            raise LoadError("shop.customers: the target refused the batch")
        return original(self, records)

    monkeypatch.setattr(Loader, "load", broken)
    run_id = harness.run(visibility_timeout=1, max_dequeue_count=2)
    status = harness.status(run_id)
    assert status["status"] == "failed" and status["poison"]["run"] == 1
    assert [(e["step"], e["index"], e["message"]) for e in status["errors"]] == [
        ("load", 2, "LoadError: shop.customers: the target refused the batch")]

    monkeypatch.setattr(Loader, "load", original)   # the fault is fixed
    [poisoned] = harness.queues.receive(LOAD_POISON)
    harness.queues.send(LOAD, poisoned.body)
    harness.queues.delete(LOAD_POISON, poisoned)
    drain(harness.chain, harness.queues, timeout=30)
    status = harness.status(run_id)
    assert status["done"] and status["status"] == "succeeded"
    assert status["errors"] == [] and status["poison"]["run"] == 0
    assert snapshot(harness.engine, project) == expected
    assert [e.run_id for e in transform_events(harness.queues)] == [run_id]


def test_models_spanning_several_completion_groups_complete_once(tmp_path, harness_for):
    """Completion is counted per group of GROUP pages: a random-access model of 103 pages and a
    sequential one of 102 cross many group boundaries and end in a short and a full group,
    complete once each, and send one event."""
    from shared.chain.names import RUNS
    from shared.chain.state import GROUP
    assert GROUP == 10
    with SampleApi(ApiConfig(customers=25 * 102 + 7, events=20 * 102)) as big:
        project = build_project(tmp_path, big.base_url, shop=["customers", "events"], erp=[], throttle={})
        harness = harness_for(project)
        run_id = harness.run()
    assert {m: len(rows) for m, rows in snapshot(harness.engine, project).items()} == {
        "shop.customers": 25 * 102 + 7, "shop.events": 20 * 102}
    status = harness.status(run_id)
    assert {m: (s["mode"], s["planned"], s["loaded"], s["done"]) for m, s in status["models"].items()} == {
        "shop.customers": ("parallel", 103, 103, True), "shop.events": ("sequential", 102, 102, True)}
    assert [e.run_id for e in transform_events(harness.queues)] == [run_id]
    groups = sorted(harness.blobs.list(RUNS, f"{run_id}/groups/"))
    assert groups == [f"{run_id}/groups/shop.{m}/{g:05d}.loaded" for m, n in (("customers", 11), ("events", 11))
                      for g in range(n)]


def test_a_table_changed_after_a_worker_checked_it_is_caught_on_the_retry(tmp_path, api, harness_for):
    """A worker trusts a table it checked for DRIFT_CHECK_SECONDS; a table altered meanwhile makes
    the load fail, and the retry checks again and names the drift. (A keyed model: a keyless one
    loads into its run's staging table, and its swap checks the table again.)"""
    import sqlalchemy as sa
    project = build_project(tmp_path, api.base_url, shop=["products"], erp=[])
    harness = harness_for(project, max_dequeue_count=2)
    assert harness.status(harness.run())["done"]                        # checked and cached now
    with harness.engine.begin() as connection:
        connection.execute(sa.text('ALTER TABLE shop.products DROP COLUMN "name"'))
    with harness.chain() as chain:
        run_id = chain.start_run(check_target=False)
    drain(harness.chain, harness.queues, timeout=30, visibility_timeout=0, max_dequeue_count=2)
    errors = harness.status(run_id)["errors"]
    assert errors and all(e["step"] == "load" and e["poisoned"] for e in errors), errors
    assert all(e["message"].startswith("TargetDriftError: table shop.products does not match the manifest")
               for e in errors), errors


def test_a_worker_reflects_a_table_once_for_all_its_pages(tmp_path, api, harness_for, monkeypatch):
    """The drift check a worker remembers also spares the loads after it: no page reflects the
    table again (each reflection is a few catalog queries)."""
    from shared.load import drift_memory as drift
    from shared.load import loader as load_module
    checked: list[str] = []
    compare = load_module.compare_table
    monkeypatch.setattr(load_module, "compare_table", lambda inspector, schema, name, desired: (
        checked.append(name), compare(inspector, schema, name, desired))[1])
    monkeypatch.setattr(drift, "_checked", {})
    harness = harness_for(build_project(tmp_path, api.base_url, shop=["customers"], erp=[]))
    run_id = harness.run()
    status = harness.status(run_id)
    assert status["done"] and status["models"]["shop.customers"]["loaded"] > 1
    assert checked == ["customers", "customers"]   # when the run starts, then by the first load only


# ---------------------------------------------------------------- several pages per message
BLOCKS = {"chain": {"pages_per_message": 5}}


def test_blocks_of_pages_cover_every_page_once_within_completion_groups():
    from shared.chain.fetching import blocks
    assert blocks(1, 5) == [] and blocks(2, 5) == [(1, 1)]
    assert blocks(6, 5) == [(1, 4), (5, 1)]
    assert blocks(25, 10) == [(1, 9), (10, 10), (20, 5)]
    assert blocks(5, 1) == [(1, 1), (2, 1), (3, 1), (4, 1)]
    for count in range(1, 40):
        for size in (1, 2, 5, 10):
            pages = [k for start, n in blocks(count, size) for k in range(start, start + n)]
            assert pages == list(range(1, count))
            assert all(start // 10 == (start + n - 1) // 10 and n <= size for start, n in blocks(count, size))


def test_several_pages_per_message_land_what_the_embedded_run_lands(tmp_path, api, harness_for):
    """`chain.pages_per_message: 5`: a fanned-out model's pages travel five to a Fetch and a Load
    message (one blob, one ledger marker per stage); sequential styles and SQL stay one a message."""
    from shared.chain.names import RUNS
    project = build_project(tmp_path, api.base_url, shop=["customers", "products", "events"], erp=["orders"],
                            settings=BLOCKS)
    expected = reference_snapshot(project, tmp_path)
    harness = harness_for(project)
    api.reset()
    run_id = harness.run()
    assert snapshot(harness.engine, project) == expected
    assert api.stats()["requests"]["by_path"] == {"/v1/customers": 6, "/v1/products": 3, "/v1/events": 4}

    fanned = sorted((job.index, job.pages, delay) for job, delay in harness.sent(FETCH, "shop.customers"))
    assert fanned == [(1, 4, pytest.approx(3 / RATE)), (5, 1, pytest.approx(5 * 3 / RATE))]  # 3 models share the rate
    loads = sorted((job.index, job.pages, job.records, job.last) for job, _ in harness.sent(LOAD, "shop.customers"))
    assert loads == [(0, 1, 25, False), (1, 4, 100, False), (5, 1, 5, True)]
    assert [(job.index, job.pages) for job, _ in harness.sent(FETCH, "shop.events")] == [(1, 1), (2, 1), (3, 1)]
    markers = [name.rsplit("/", 1)[-1] for name in harness.blobs.list(RUNS, f"{run_id}/pages/shop.customers/")]
    assert markers == ["000000.fetched", "000000.loaded", "000001-000004.fetched", "000001-000004.loaded",
                       "000005.fetched", "000005.loaded"]
    status = harness.status(run_id)
    assert status["done"] and status["errors"] == []
    assert {m: (s["planned"], s["fetched"], s["loaded"]) for m, s in status["models"].items()} == {
        "shop.customers": (6, 6, 6), "shop.products": (3, 3, 3), "shop.events": (4, 4, 4), "erp.orders": (3, 3, 3)}
    assert [e.run_id for e in transform_events(harness.queues)] == [run_id]


def test_several_pages_per_message_survive_duplicate_delivery(tmp_path, api, harness_for):
    project = build_project(tmp_path, api.base_url, shop=["customers"], erp=[], settings=BLOCKS)
    expected = reference_snapshot(project, tmp_path)
    harness = harness_for(project)
    api.reset()
    run_id = harness.run(dispatch=delivered_twice(harness))
    assert snapshot(harness.engine, project) == expected
    assert api.stats()["requests"]["by_path"] == {"/v1/customers": 6}   # a redelivered block is not fetched again
    assert [e.run_id for e in transform_events(harness.queues)] == [run_id]
    status = harness.status(run_id)
    assert status["done"] and status["errors"] == [] and status["models"]["shop.customers"]["loaded"] == 6


@pytest.mark.parametrize("size", [2, 5, 10])
def test_several_pages_per_message_complete_across_many_groups(tmp_path, harness_for, size):
    from shared.chain.names import RUNS
    with SampleApi(ApiConfig(customers=25 * 102 + 7)) as big:
        project = build_project(tmp_path, big.base_url, shop=["customers"], erp=[], throttle={},
                                settings={"chain": {"pages_per_message": size}})
        harness = harness_for(project)
        run_id = harness.run()
        assert big.stats()["requests"]["by_path"] == {"/v1/customers": 103}
    assert len(snapshot(harness.engine, project)["shop.customers"]) == 25 * 102 + 7
    status = harness.status(run_id)
    assert status["models"]["shop.customers"] == {**status["models"]["shop.customers"], "planned": 103, "loaded": 103,
                                                  "done": True}
    assert len(harness.sent(LOAD)) == 1 + len(blocks_of(103, size))
    groups = sorted(harness.blobs.list(RUNS, f"{run_id}/groups/"))
    assert groups == [f"{run_id}/groups/shop.customers/{g:05d}.loaded" for g in range(11)]
    assert [e.run_id for e in transform_events(harness.queues)] == [run_id]


def blocks_of(count, size):
    from shared.chain.fetching import blocks
    return blocks(count, size)


def test_a_block_rate_limited_midway_goes_back_whole(tmp_path, monkeypatch, harness_for):
    """A 429 on any page of a block sends the whole job back (same token, Retry-After as its delay);
    nothing of the block is written until all its pages are in."""
    with SampleApi(ApiConfig(customers=100, rate=0.001, burst=2)) as slow_api:
        project = build_project(tmp_path, slow_api.base_url, shop=["customers"], erp=[],
                                throttle={"max_backoff": 1000}, settings=BLOCKS)   # the API asks for 1000 s
        harness = harness_for(project, client_factory=no_sleep_client)
        monkeypatch.setattr(time, "sleep", failing_sleep)
        with harness.chain() as chain:
            run_id = chain.start_run(["shop"])
            [message] = harness.queues.receive(PAGINATE)
            chain.handle(PAGINATE, message.body)              # page 0 takes one token
            [(block, _)] = harness.sent(FETCH)
            assert (block.index, block.pages) == (1, 3)
            chain.fetch(block)                                 # page 1 takes the other, page 2 meets a 429
        (again, delay), = harness.sent(FETCH)[1:]
        assert delay == 1000 and again == PageJob(**{**block.__dict__, "attempt": 1})
        assert harness.sent(LOAD, "shop.customers") and len(harness.sent(LOAD)) == 1   # page 0's only
        assert harness.status(run_id)["models"]["shop.customers"]["fetched"] == 1


def test_a_block_job_for_a_source_that_cannot_take_one_is_refused(tmp_path, api, harness_for):
    from shared.chain.fetching import Fetcher
    from shared.chain.pages import ChainError
    project = build_project(tmp_path, api.base_url, shop=["events"], erp=["orders"])
    harness = harness_for(project)
    with harness.chain() as chain:
        run_id = chain.start_run(["shop", "erp"])
        with pytest.raises(ChainError, match="needs a random-access pagination"):
            Fetcher(chain).fetch(PageJob(run_id, "shop.events", 1, request={"url": f"{api.base_url}/v1/events",
                                                                             "params": {}}, pages=2))
        with pytest.raises(ChainError, match="a SQL source's job fetches one chunk, not 2 pages"):
            Fetcher(chain).fetch(PageJob(run_id, "erp.orders", 1, pages=2))


def test_a_failed_swap_of_a_keyless_model_shows_in_the_run_status(tmp_path, api, harness_for, monkeypatch):
    """The last load's rows commit before the model's staging table is swapped in, so its page is
    marked loaded: the swap's failure is recorded as the step `finish`, which that marker does not
    hide, and the run ends failed with the reason in its status."""
    from shared.load.loader import Loader, LoadError

    def failing_swap(self: Loader, complete: bool = True) -> None:
        raise LoadError(f"{self.ref.qualified}: swapping in the run's staging table failed: OperationalError")

    monkeypatch.setattr(Loader, "finish", failing_swap)
    harness = harness_for(build_project(tmp_path, api.base_url, shop=["countries"], erp=[]), max_dequeue_count=2)
    run_id = harness.run()
    status = harness.status(run_id)
    assert status["status"] == "failed" and not status["done"], status
    finish = [e for e in status["errors"] if e["step"] == "finish"]
    assert finish and finish[-1]["poisoned"], status["errors"]
    assert finish[-1]["message"].startswith("FinishError: shop.countries: swapping in the run's staging table failed")
