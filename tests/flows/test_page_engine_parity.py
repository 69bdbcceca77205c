"""One page engine for both modes (issue 13 §4): the same manifests run embedded (`run_models`, as
`main.py run`) and through the queue chain (pumped in process, `tests/helpers/chain.py` Harness) must
land the same tables, report the same warnings and fail with the same errors.

Every pagination type, SQL keyset and keyless, a stated total never reached (by offsets failing and
warning, by page numbers warning), an API looping on its cursor and one ignoring its paging
parameters, `max_pages` caps on a fanned-out and on a sequential pagination, and a 429. A failed
model's table is not compared: the embedded run discards the batch in flight, the chain has loaded
the pages before the failure; its error is.
"""
from __future__ import annotations

import pytest

from tests.helpers.http_stub import StubServer
from tests.helpers.parity import (
    API_MODELS,
    FAILING,
    SQL_MODELS,
    PagingApi,
    assert_expected,
    build,
    chained,
    embedded,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("parity")
    handler = PagingApi()
    with StubServer(handler=handler) as server:
        project = build(tmp_path, server.url(""))
        first = embedded(project, tmp_path)
        handler.reset()
        second = chained(project, tmp_path)
    return project, first, second


MODELS = [f"api.{name}" for name in API_MODELS] + [f"erp.{name}" for name in SQL_MODELS]


@pytest.mark.parametrize("model", MODELS)
def test_both_modes_report_the_same_error(runs, model):
    _, (_, _, errors), (_, _, chain_errors) = runs
    assert chain_errors[model] == errors[model]
    assert (errors[model] is not None) == (model in FAILING)


@pytest.mark.parametrize("model", MODELS)
def test_both_modes_report_the_same_warnings(runs, model):
    _, (_, warnings, _), (_, chain_warnings, _) = runs
    assert chain_warnings[model] == warnings[model]


@pytest.mark.parametrize("model", [m for m in MODELS if m not in FAILING])
def test_both_modes_land_the_same_table(runs, model):
    _, (tables, _, _), (chain_tables, _, _) = runs
    assert chain_tables[model] == tables[model]
    assert tables[model]


def test_what_each_case_is_expected_to_say(runs):
    """The shared answers are the right ones, not merely the same."""
    _, first, _ = runs
    assert_expected(first)
    assert set(first[0]) == set(MODELS)
