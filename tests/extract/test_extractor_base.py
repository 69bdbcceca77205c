"""The generic extractor's own duties, over a connector that yields fixed pages: shaping and PII
before anything leaves, limits, reconciliation with a stated total, stats; each with the free-text
scan on the run's thread and in the scan process (`scan_process`)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.config.models import ApiModel, ApiSource
from shared.config.project import ModelRef
from shared.extract.base import GenericExtractor, RawPage
from shared.extract.reconcile import ShortfallError
from shared.pii.stripper import PiiStripper


class FixedPages(GenericExtractor):
    def __init__(self, pages: list[list[dict]], stated_total: int | None = None, limit: int | None = None,
                 scan_process: bool = False, fail_at: int | None = None):
        model = ApiModel(path="/x", primary_key=["id"], columns={"id": {"type": "integer"},
                                                                  "email": {"type": "string", "pii": "drop"},
                                                                  "note": {"type": "text"}})
        source = ApiSource(type="api", base_url="http://127.0.0.1:1", models={"m": model})
        ref = ModelRef("s", source, "m", model, "redact")
        super().__init__(ref, PiiStripper(model.columns, scan="redact", key=None), limit, scan_process=scan_process)
        self._pages, self._stated, self._fail_at = pages, stated_total, fail_at
        self.closed = 0

    def raw_pages(self) -> Iterator[RawPage]:
        self.stats.stated_total = self._stated
        for index, records in enumerate(self._pages):
            if index == self._fail_at:
                raise ConnectionError(f"page {index} could not be fetched")
            yield RawPage(records)

    def close(self) -> None:
        self.closed += 1


def people(start: int, count: int) -> list[dict]:
    return [{"id": str(i), "email": f"p{i}@example.com", "note": f"call +44 20 7946 0{i:03d}"}
            for i in range(start, start + count)]


@pytest.fixture(params=[False, True], ids=["scan here", "scan process"])
def scan_process(request) -> bool:
    return request.param


def test_records_are_typed_and_stripped_page_by_page(scan_process):
    extractor = FixedPages([people(1, 3), people(4, 2)], scan_process=scan_process)
    pages = list(extractor.pages())
    assert [p.index for p in pages] == [0, 1]
    assert pages[0].records[0] == {"id": 1, "note": "call [PHONE]"}
    assert [r["note"] for p in pages for r in p.records] == ["call [PHONE]"] * 5
    assert extractor.stats.pages == 2 and extractor.stats.records == 5 and extractor.closed == 1
    assert extractor.stats.warnings == []   # the scan process answered: no fallback
    assert (extractor.stats.scan_process_peak_kib is not None) == scan_process


def test_pages_before_a_failure_still_come_out_first(scan_process):
    extractor = FixedPages([people(1, 2), people(3, 2), people(5, 2)], scan_process=scan_process, fail_at=2)
    seen = []
    with pytest.raises(ConnectionError, match="page 2 could not be fetched"):
        for page in extractor.pages():
            seen.append([r["note"] for r in page.records])
    assert seen == [["call [PHONE]"] * 2] * 2 and extractor.stats.pages == 2 and extractor.closed == 1


def test_a_bad_record_stops_after_the_pages_before_it(scan_process):
    extractor = FixedPages([people(1, 2), [{"id": "not a number", "note": "x"}]], scan_process=scan_process)
    seen = []
    with pytest.raises(Exception, match="id"):
        for page in extractor.pages():
            seen.append(page.index)
    assert seen == [0]


def test_a_shortfall_against_the_stated_total_fails_after_every_page_came_out(scan_process):
    extractor = FixedPages([people(1, 3), people(4, 1)], stated_total=5, scan_process=scan_process)
    seen = []
    with pytest.raises(ShortfallError, match=r"^s\.m: the API stated 5 records but 4 arrived \(shortfall 1\); "
                                             r"set pagination\.on_shortfall: warn"):
        for page in extractor.pages():
            seen.append(len(page.records))
    assert seen == [3, 1] and extractor.stats.warnings == [] and extractor.closed == 1


def test_a_shortfall_is_only_reported_with_on_shortfall_warn(scan_process):
    extractor = FixedPages([people(1, 3)], stated_total=5, scan_process=scan_process)
    extractor.on_shortfall = "warn"
    list(extractor.records())
    assert extractor.stats.warnings == ["s.m: the API stated 5 records but 3 arrived (shortfall 2)"]


def test_a_matching_total_gives_no_warning_and_a_limit_skips_reconciliation(scan_process):
    complete = FixedPages([people(1, 3)], stated_total=3, scan_process=scan_process)
    list(complete.records())
    assert complete.stats.warnings == []
    limited = FixedPages([people(1, 3), people(4, 3)], stated_total=100, limit=4, scan_process=scan_process)
    assert [r["id"] for r in limited.records()] == [1, 2, 3, 4]
    assert limited.stats.truncated_by == "limit" and limited.stats.warnings == [] and limited.closed == 1


def test_stopping_early_still_closes_the_connector(scan_process):
    extractor = FixedPages([people(1, 3), people(4, 3)], scan_process=scan_process)
    iterator = extractor.pages()
    next(iterator)
    iterator.close()
    assert extractor.closed == 1
