"""What an embedded run (`run_models`) leaves in the run ledger: every page marked fetched and,
once its batch has committed, loaded, with one marker per load batch rather than per page; a
run that stops still shows the pages it fetched and only the ones it loaded."""
from __future__ import annotations

import pytest

from samples.sample_api.server import ApiConfig, SampleApi
from shared.errors import ExtractError
from shared.ledger import CONTAINER, RunLedger
from shared.load.loader import Loader, LoadError
from shared.pipeline import run as pipeline_run
from shared.pipeline.run import run_models
from shared.storage import LocalBlobStore
from tests.helpers.chain import applied_target
from tests.helpers.flow import api_source, project_for

PER_PAGE, CUSTOMERS = 10, 95   # 10 pages, the last one of 5 records


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=CUSTOMERS)) as server:
        yield server


def run_once(tmp_path, api):
    model = {"path": "/v1/customers", "records": "data", "params": {"per_page": PER_PAGE}, "primary_key": ["id"],
             "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"},
             "columns": {"id": {"type": "integer"},
                         "city": {"path": "address.city", "type": "string", "length": 100}}}
    project = project_for(tmp_path, {"shop": api_source(api.base_url, {"customers": model})},
                          {"target_url": f"sqlite:///{tmp_path / 'target.db'}",
                           "storage": {"root": str(tmp_path / "storage")},
                           "load": {"batch_size": 40}})   # 4 pages a batch
    engine = applied_target(project, tmp_path / "target.db")
    ledger = RunLedger(LocalBlobStore(tmp_path / "ledger"))
    try:
        summary = run_models(project, project.models(), engine=engine, ledger=ledger)
    finally:
        engine.dispose()
    return summary, ledger


def markers(ledger: RunLedger, run_id: str) -> list[str]:
    prefix = f"{run_id}/pages/shop.customers/"
    return [name[len(prefix):] for name in ledger.store.list(CONTAINER, prefix)]


def test_every_page_is_marked_once_per_stage_with_one_marker_per_batch(tmp_path, api):
    summary, ledger = run_once(tmp_path, api)
    assert summary.ok, summary.render()
    assert ledger.pages(summary.run_id, "shop.customers", "fetched") == 10
    assert ledger.pages(summary.run_id, "shop.customers", "loaded") == 10
    assert markers(ledger, summary.run_id) == [
        "000000-000003.fetched", "000000-000003.loaded", "000004-000007.fetched", "000004-000007.loaded",
        "000008-000009.fetched", "000008-000009.loaded"]


def test_a_run_stopped_by_a_load_shows_what_it_fetched_and_what_it_loaded(tmp_path, api, monkeypatch):
    write, calls = Loader.write, []

    def second_batch_fails(self, batch):
        calls.append(batch)
        if len(calls) == 2:
            raise LoadError("shop.customers: injected")
        return write(self, batch)
    monkeypatch.setattr(Loader, "write", second_batch_fails)
    summary, ledger = run_once(tmp_path, api)
    assert summary.results[0].error == "shop.customers: injected"
    assert markers(ledger, summary.run_id) == ["000000-000003.fetched", "000000-000003.loaded", "000004-000007.fetched"]


def test_a_run_stopped_by_the_source_still_marks_the_pages_it_fetched(tmp_path, api, monkeypatch):
    build = pipeline_run.build_extractor

    def failing_after_six_pages(project, ref, limit=None, **options):
        extractor = build(project, ref, limit, **options)
        pages = extractor.pages

        def six_then_fail():
            for page in pages():
                yield page
                if page.index == 5:
                    raise ExtractError("shop.customers: injected")
        extractor.pages = six_then_fail
        return extractor
    monkeypatch.setattr(pipeline_run, "build_extractor", failing_after_six_pages)
    summary, ledger = run_once(tmp_path, api)
    assert summary.results[0].error == "shop.customers: injected"
    assert markers(ledger, summary.run_id) == [
        "000000-000003.fetched", "000000-000003.loaded", "000004-000005.fetched"]
