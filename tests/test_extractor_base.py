"""The generic extractor's own duties, over a connector that yields fixed pages: shaping and PII
before anything leaves, limits, reconciliation with a stated total, stats."""
from __future__ import annotations

from typing import Iterator

from shared.config.models import ApiModel, ApiSource
from shared.config.project import ModelRef
from shared.extract.base import GenericExtractor, RawPage
from shared.pii import PiiStripper


class FixedPages(GenericExtractor):
    def __init__(self, pages: list[list[dict]], stated_total: int | None = None, limit: int | None = None):
        model = ApiModel(path="/x", primary_key=["id"], columns={"id": {"type": "integer"},
                                                                  "email": {"type": "string", "pii": "drop"},
                                                                  "note": {"type": "text"}})
        source = ApiSource(type="api", base_url="http://127.0.0.1:1", models={"m": model})
        ref = ModelRef("s", source, "m", model, "redact")
        super().__init__(ref, PiiStripper(model.columns, scan="redact", key=None), limit)
        self._pages, self._stated = pages, stated_total
        self.closed = 0

    def raw_pages(self) -> Iterator[RawPage]:
        self.stats.stated_total = self._stated
        for records in self._pages:
            yield RawPage(records)

    def close(self) -> None:
        self.closed += 1


def people(start: int, count: int) -> list[dict]:
    return [{"id": str(i), "email": f"p{i}@example.com", "note": f"call +44 20 7946 0{i:03d}"} for i in range(start, start + count)]


def test_records_are_typed_and_stripped_page_by_page():
    extractor = FixedPages([people(1, 3), people(4, 2)])
    pages = list(extractor.pages())
    assert [p.index for p in pages] == [0, 1]
    assert pages[0].records[0] == {"id": 1, "note": "call [PHONE]"}
    assert extractor.stats.pages == 2 and extractor.stats.records == 5 and extractor.closed == 1


def test_a_shortfall_against_the_stated_total_is_reported():
    extractor = FixedPages([people(1, 3)], stated_total=5)
    list(extractor.records())
    assert extractor.stats.warnings == ["s.m: the API stated 5 records but 3 arrived (shortfall 2)"]


def test_a_matching_total_gives_no_warning_and_a_limit_skips_reconciliation():
    complete = FixedPages([people(1, 3)], stated_total=3)
    list(complete.records())
    assert complete.stats.warnings == []
    limited = FixedPages([people(1, 3), people(4, 3)], stated_total=100, limit=4)
    assert [r["id"] for r in limited.records()] == [1, 2, 3, 4]
    assert limited.stats.truncated_by == "limit" and limited.stats.warnings == [] and limited.closed == 1


def test_stopping_early_still_closes_the_connector():
    extractor = FixedPages([people(1, 3), people(4, 3)])
    iterator = extractor.pages()
    next(iterator)
    iterator.close()
    assert extractor.closed == 1
