"""The run ledger and the local blob store it sits on: atomic writes, conditional creates that
make duplicate deliveries harmless, recent runs in order."""
from __future__ import annotations

import threading
from datetime import UTC

import pytest

from shared.ledger import RunLedger, new_run_id
from shared.storage import LocalBlobStore


def test_conditional_create_has_exactly_one_winner(tmp_path):
    store = LocalBlobStore(tmp_path)
    wins = []
    barrier = threading.Barrier(8)

    def racer(i: int) -> None:
        barrier.wait()
        wins.append(store.create("c", "run/done", str(i).encode()))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1 and store.get("c", "run/done") is not None


def test_put_get_list_delete_and_unsafe_names(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put("c", "a/b.json", b"1")
    store.put("c", "a/b.json", b"2")
    store.put("c", "a/c.json", b"3")
    assert store.get("c", "a/b.json") == b"2" and store.get("c", "missing") is None
    assert store.list("c", "a/") == ["a/b.json", "a/c.json"] and store.list("other") == []
    store.delete("c", "a/b.json")
    assert store.list("c") == ["a/c.json"]
    for bad in ("../escape", "/abs", ""):
        with pytest.raises(ValueError):
            store.put("c", bad, b"x")


def test_a_run_is_recorded_with_pages_counted_once(tmp_path):
    ledger = RunLedger(LocalBlobStore(tmp_path))
    run_id = new_run_id()
    ledger.start(run_id, ["shop.customers"], "test")
    assert ledger.page(run_id, "shop.customers", 0, "fetched", 100) is True
    assert ledger.page(run_id, "shop.customers", 0, "fetched", 100) is False   # a duplicate delivery
    ledger.page(run_id, "shop.customers", 1, "fetched", 50)
    ledger.page(run_id, "shop.customers", 0, "loaded", 100)
    assert ledger.pages(run_id, "shop.customers", "fetched") == 2
    assert ledger.pages(run_id, "shop.customers", "loaded") == 1
    ledger.finish_model(run_id, "shop.customers", {"records": 150})
    record = ledger.finish(run_id, "succeeded", {"records": 150})
    assert record.status == "succeeded" and record.ended_at
    assert ledger.model_outcomes(run_id) == {"shop.customers": {"records": 150}}
    with pytest.raises(ValueError):
        ledger.page(run_id, "shop.customers", 2, "transformed", 1)


def test_recent_runs_newest_first(tmp_path):
    from datetime import datetime, timedelta

    ledger = RunLedger(LocalBlobStore(tmp_path))
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_run_id(base + timedelta(minutes=i)) for i in range(3)]
    for run_id in ids:
        ledger.start(run_id, ["m"], "test")
    assert [r.run_id for r in ledger.recent(2)] == [ids[2], ids[1]]


def test_a_range_marker_counts_each_of_its_pages(tmp_path):
    ledger = RunLedger(LocalBlobStore(tmp_path))
    run_id = new_run_id()
    assert ledger.page_range(run_id, "shop.customers", 0, 4, "fetched", 500) is True
    assert ledger.page_range(run_id, "shop.customers", 0, 4, "fetched", 500) is False   # marked already
    ledger.page_range(run_id, "shop.customers", 5, 5, "fetched", 20)
    ledger.page(run_id, "shop.customers", 6, "fetched", 20)   # the two kinds of marker mix
    ledger.page_range(run_id, "shop.customers", 0, 4, "loaded", 500)
    assert ledger.pages(run_id, "shop.customers", "fetched") == 7
    assert ledger.pages(run_id, "shop.customers", "loaded") == 5
    assert ledger.pages(run_id, "shop.other", "loaded") == 0
    with pytest.raises(ValueError, match="page range 3-2 is empty"):
        ledger.page_range(run_id, "shop.customers", 3, 2, "loaded", 0)
    with pytest.raises(ValueError, match="stage must be one of fetched, loaded"):
        ledger.page_range(run_id, "shop.customers", 7, 8, "transformed", 1)
