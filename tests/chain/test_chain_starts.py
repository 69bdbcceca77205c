"""Issue 12 §4, claim-check of what a page hands the next: a next link, a cursor or a SQL chunk's
last key comes from the source, so it waits in a start blob of the run (`pages.start_blob_name`)
and the next page's job carries only its digest. Duplicate deliveries stay harmless, and a start
blob that is missing, altered or not one of ours fails the job with a message naming the page."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from samples.sample_api.server import ApiConfig, SampleApi
from shared.chain import PageJob, decode
from shared.chain.messages import new_token
from shared.chain.names import FETCH, PAGINATE, RAW, RUNS
from shared.chain.pages import ChainError, encode_start, start_blob_name
from shared.chain.sealed import seal, unseal
from tests.helpers.chain import API_COUNTS, build_project
from tests.helpers.flow import TEST_KEY


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(**API_COUNTS)) as server:
        yield server


def starts(harness, run_id: str) -> list[str]:
    return harness.blobs.list(RAW, f"starts/{run_id}/")


def test_sequential_pages_carry_a_digest_and_find_their_start_in_a_blob(tmp_path, api, harness_for):
    project = build_project(tmp_path, api.base_url, shop=["orders", "events"], erp=["orders"])
    harness = harness_for(project)
    run_id = harness.run()
    status = harness.status(run_id)
    assert status["done"] and all(m["loaded"] == m["planned"] for m in status["models"].values())
    jobs = [job for job, _ in harness.sent(FETCH)]
    assert jobs and all(job.request is None and job.start for job in jobs)   # cursor, next link, SQL chunks
    assert sorted(starts(harness, run_id)) == sorted(start_blob_name(run_id, j.model, j.index, j.start) for j in jobs)
    # every message as sent: no URL, no cursor, no key
    bodies = json.dumps([body for _, body, _ in harness.queues.sent])
    assert "http" not in bodies and "next_cursor" not in bodies and "SO-0000" not in bodies


def test_duplicates_and_redeliveries_of_a_chained_page_are_harmless(tmp_path, api, harness_for):
    project = build_project(tmp_path, api.base_url, shop=["events"], erp=["orders"])
    harness = harness_for(project)
    run_id = harness.run()
    before = harness.status(run_id)["models"]
    blobs = sorted(starts(harness, run_id))
    jobs = [job for job, _ in harness.sent(FETCH)]
    with harness.chain() as chain:
        for job in jobs:
            chain.fetch(job)                                  # the owner's message again
            chain.fetch(PageJob(**{**job.__dict__, "token": new_token()}))   # a copy: skipped
    assert harness.status(run_id)["models"] == before and sorted(starts(harness, run_id)) == blobs
    # the owner dies after writing its next page's start and job, before its `fetched` marker: the
    # redelivery fetches again and names the same start (content-addressed), which the next
    # page's claim already owns
    [first] = [job for job in jobs if job.model == "shop.events" and job.index == 1]
    [marker] = [n for n in harness.blobs.list(RUNS, f"{run_id}/pages/shop.events/") if n.endswith("000001.fetched")]
    harness.blobs.delete(RUNS, marker)
    sent = len(harness.queues.sent)
    with harness.chain() as chain:
        chain.fetch(first)
    [again] = [decode(body) for q, body, _ in harness.queues.sent[sent:] if q == FETCH]
    [original] = [job for job in jobs if job.model == "shop.events" and job.index == 2]
    assert again.start == original.start and sorted(starts(harness, run_id)) == blobs
    with harness.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM shop.events")).scalar_one() == API_COUNTS["events"]


@pytest.mark.parametrize("damage, error", [
    ("missing", "the start of page 1 of run .* is missing from kspyder-raw"),
    ("altered", r"the start of page 1 of run .* cannot be opened with this PII key \(another key, or altered\)"),
    ("plain", "the start of page 1 of run .* is not sealed, but a PII key is set"),
    ("foreign", "the start of page 1 of run .* is not a paginator state this model can take up"),
    ("other type", "the start of page 1 of run .* is not a paginator state this model can take up"),
    ("other kind", "the start of page 1 of run .* holds no paginator"),
])
def test_a_start_blob_missing_altered_or_foreign_fails_the_job(tmp_path, api, harness_for, damage, error):
    project = build_project(tmp_path, api.base_url, shop=["events"], erp=[])
    harness = harness_for(project)
    with harness.chain() as chain:
        run_id = chain.start_run(["shop"])
        [message] = harness.queues.receive(PAGINATE)
        chain.handle(PAGINATE, message.body)          # page 0: leaves page 1's start and job
    [job] = [j for j, _ in harness.sent(FETCH)]
    name = start_blob_name(run_id, job.model, job.index, job.start)
    if damage == "missing":
        harness.blobs.delete(RAW, name)
    elif damage == "altered":
        data = harness.blobs.get(RAW, name)
        harness.blobs.put(RAW, name, data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "plain":   # readable JSON where a sealed blob belongs: not written by this app
        harness.blobs.put(RAW, name, unseal(harness.blobs.get(RAW, name), TEST_KEY))
    else:
        state = {"type": "next_link", "pages_seen": 1, "has_next": True, "total_pages": None, "stated_total": None,
                 "planned": True, "capped": False, "last": None, "next_url": "file:///etc/passwd", "seen": []}
        stored = {"foreign": {"paginator": state}, "other type": {"paginator": {**state, "type": "cursor"}},
                  "other kind": {"sql_after": [1]}}[damage]
        content, digest = encode_start(stored)
        harness.blobs.put(RAW, start_blob_name(run_id, job.model, job.index, digest), seal(content, TEST_KEY))
        job = PageJob(**{**job.__dict__, "start": digest})
    with harness.chain() as chain, pytest.raises(ChainError, match=f"shop.events: {error}") as caught:
        chain.fetch(job)
    assert "passwd" not in str(caught.value) and api.base_url not in str(caught.value)
