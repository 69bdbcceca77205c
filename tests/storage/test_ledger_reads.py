"""The ledger's page-marker reads (`RunLedger.marker`, `page_counts`, `marked_from`, `records`): the
queue chain's run state reads markers only through them, so the layout is known in one place."""
from __future__ import annotations

import pytest

from shared.ledger import RunLedger
from shared.storage import LocalBlobStore

RUN, MODEL = "r1", "shop.customers"


@pytest.fixture
def ledger(tmp_path):
    ledger = RunLedger(LocalBlobStore(tmp_path))
    ledger.start(RUN, [MODEL], "test")
    ledger.page(RUN, MODEL, 0, "fetched", 10)
    ledger.page_range(RUN, MODEL, 1, 4, "fetched", 40)
    ledger.page_range(RUN, MODEL, 10, 12, "fetched", 30)
    ledger.page(RUN, MODEL, 0, "loaded", 10)
    return ledger


def test_markers_are_read_back_by_the_pages_they_cover(ledger):
    assert ledger.marker(RUN, MODEL, 1, "fetched", 4)["records"] == 40
    assert ledger.marker(RUN, MODEL, 1, "fetched") is None and ledger.marker(RUN, MODEL, 1, "loaded", 4) is None
    assert ledger.marked_from(RUN, MODEL, 1, "fetched") and not ledger.marked_from(RUN, MODEL, 2, "fetched")
    assert not ledger.marked_from(RUN, MODEL, 1, "loaded")


def test_counts_of_a_model_and_of_one_group(ledger):
    assert ledger.page_counts(RUN, MODEL) == {"fetched": 8, "loaded": 1}
    assert ledger.page_counts(RUN, MODEL, 0, 10) == {"fetched": 5, "loaded": 1}
    assert ledger.page_counts(RUN, MODEL, 1, 10) == {"fetched": 3, "loaded": 0}
    assert ledger.pages(RUN, MODEL, "fetched") == 8
    with pytest.raises(ValueError, match="power of ten"):
        ledger.page_counts(RUN, MODEL, 0, 12)


def test_records_add_up_every_marker_of_a_stage(ledger):
    assert ledger.records(RUN, MODEL) == 80 and ledger.records(RUN, MODEL, "loaded") == 10
