"""Nothing lost silently in pagination (issue 12 §7), in both modes: an API that serves fewer
records per page than asked, and an API whose stated total is not reached.

The emulated API is Jira Cloud's search (tests/helpers/jira.py): asked `maxResults=1000`, it serves
at most its own cap of 50 and says so in the body; 270 records make six pages.

Each case runs through `main.py extract`, `main.py run` (embedded) and the queue chain pumped in
process (`tests/helpers/chain.py` Harness): every record arrives; a total the API states but never
serves fails the model with the same message in both modes; `on_shortfall: warn` only warns.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli.main import cli
from shared.ledger import RunLedger
from shared.target.dialects import create_target_engine
from tests.helpers.chain import Harness
from tests.helpers.flow import TEST_KEY
from tests.helpers.http_stub import StubServer
from tests.helpers.jira import PAGINATIONS, RECORDS, SHORT, SHORTFALL, CappedApi, chain_harness, settings, sources


def write_manifests(tmp_path: Path, source: dict[str, Any]) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": source}, sort_keys=False))
    (folder / "settings.yml").write_text(yaml.safe_dump(settings(tmp_path), sort_keys=False))
    return folder


def invoke(folder: Path, *args: str):
    return CliRunner().invoke(cli, ["--manifests", str(folder), *args], env={"KSPYDER_PII_KEY": TEST_KEY},
                              catch_exceptions=False)


def target_ids(tmp_path: Path) -> list[int]:
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}", ["jira"])
    try:
        with engine.connect() as connection:
            return sorted(row[0] for row in connection.execute(sa.text("SELECT id FROM jira.issues")))
    finally:
        engine.dispose()


@pytest.fixture
def api():
    with StubServer(handler=CappedApi()) as server:
        yield server


def every_id() -> list[int]:
    return [10000 + i for i in range(RECORDS)]


# ---------------------------------------------------------------- embedded
@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("kind", list(PAGINATIONS))
def test_extract_gets_every_record_of_a_capped_api(tmp_path, api, kind, concurrency):
    folder = write_manifests(tmp_path, sources(api.url(""), kind, concurrency))
    result = invoke(folder, "extract", "jira.issues")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == every_id()
    assert f"jira.issues: {RECORDS} records, 6 pages, 6 requests" in result.stderr
    assert "warning" not in result.stderr


@pytest.mark.parametrize("kind", ["offset_stated", "page_number_shown"])
def test_run_loads_every_record_of_a_capped_api(tmp_path, api, kind):
    folder = write_manifests(tmp_path, sources(api.url(""), kind, concurrency=3))
    result = invoke(folder, "run", "--apply")
    assert result.exit_code == 0, result.stderr
    assert f"jira.issues: {RECORDS} records, 6 pages" in result.stderr
    assert target_ids(tmp_path) == every_id()


def test_uneven_pages_make_the_parallel_run_go_on_page_by_page(tmp_path):
    """A page short of the cap before the end: the offsets fetched ahead would skip 20 records."""
    with StubServer(handler=CappedApi(short_at=100)) as server:
        folder = write_manifests(tmp_path, sources(server.url(""), "offset_stated", concurrency=4))
        result = invoke(folder, "extract", "jira.issues")
        asked = sorted({int(s.query["startAt"][0]) for s in server.seen("/rest/api/3/search")})
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == every_id()
    assert {0, 50, 100, 130, 180, 230} <= set(asked)   # after the short page, offsets follow what arrived


@pytest.mark.parametrize("command", ["extract", "run"])
@pytest.mark.parametrize("kind", ["offset_stated", "page_number_stated"])
def test_a_total_never_reached_fails_the_model(tmp_path, kind, command):
    with StubServer(handler=CappedApi(stated=SHORT)) as server:
        folder = write_manifests(tmp_path, sources(server.url(""), kind))
        result = invoke(folder, command, *(["--apply"] if command == "run" else []))
    assert result.exit_code == 1
    assert (f"jira.issues: FAILED after {RECORDS} records: {SHORTFALL}; "
            f"set pagination.on_shortfall: warn to accept a short answer") in result.stderr


@pytest.mark.parametrize("command", ["extract", "run"])
def test_on_shortfall_warn_only_warns(tmp_path, command):
    with StubServer(handler=CappedApi(stated=SHORT)) as server:
        folder = write_manifests(tmp_path, sources(server.url(""), "offset_stated", on_shortfall="warn"))
        result = invoke(folder, command, *(["--apply"] if command == "run" else []))
    assert result.exit_code == 0, result.stderr
    assert f"warning: {SHORTFALL}" in result.stderr
    if command == "run":
        assert target_ids(tmp_path) == every_id()


# ---------------------------------------------------------------- queue chain
def chain_ids(harness: Harness) -> list[int]:
    with harness.engine.connect() as connection:
        return sorted(row[0] for row in connection.execute(sa.text("SELECT id FROM jira.issues")))


@pytest.mark.parametrize("per_message", [1, 2])
@pytest.mark.parametrize("kind", list(PAGINATIONS))
def test_the_chain_gets_every_record_of_a_capped_api(tmp_path, api, harness_for, kind, per_message):
    harness = chain_harness(tmp_path, harness_for, api.url(""), kind, {"pages_per_message": per_message})
    run_id = harness.run()
    status = harness.status(run_id)
    assert status["done"] and status["errors"] == [], status
    assert status["models"]["jira.issues"]["mode"] == "parallel"
    assert status["models"]["jira.issues"]["planned"] == 6
    assert chain_ids(harness) == every_id()
    outcome = RunLedger(harness.blobs).model_outcomes(run_id)["jira.issues"]
    assert outcome["warnings"] == [] and "error" not in outcome


@pytest.mark.parametrize("kind", ["offset_stated", "page_number_stated"])
def test_the_chain_fails_a_model_whose_total_is_never_reached(tmp_path, harness_for, kind):
    with StubServer(handler=CappedApi(stated=SHORT)) as server:
        harness = chain_harness(tmp_path, harness_for, server.url(""), kind)
        run_id = harness.run()
    ledger = RunLedger(harness.blobs)
    outcome = ledger.model_outcomes(run_id)["jira.issues"]
    assert outcome["error"] == f"{SHORTFALL}; set pagination.on_shortfall: warn to accept a short answer"
    record = ledger.get(run_id)
    assert record.status == "failed" and record.summary["ok"] is False
    status = harness.status(run_id)
    assert not status["done"] and not status["transform_sent"]
    assert chain_ids(harness) == every_id()   # what arrived is loaded; the run says it is not all


def test_the_chain_with_on_shortfall_warn_warns_in_the_outcome(tmp_path, harness_for):
    with StubServer(handler=CappedApi(stated=SHORT)) as server:
        harness = chain_harness(tmp_path, harness_for, server.url(""), "offset_stated", on_shortfall="warn")
        run_id = harness.run()
    ledger = RunLedger(harness.blobs)
    assert ledger.model_outcomes(run_id)["jira.issues"]["warnings"] == [SHORTFALL]
    assert ledger.get(run_id).status == "succeeded"
    status = harness.status(run_id)
    assert status["done"] and status["models"]["jira.issues"]["warnings"] == [SHORTFALL]


def test_the_chain_fails_rather_than_skip_the_records_of_an_uneven_page(tmp_path, harness_for):
    """Fanned-out pages are fetched at planned offsets; a page short before the end leaves a gap
    the stated total shows: the model fails instead of succeeding with 20 records missing."""
    with StubServer(handler=CappedApi(short_at=100)) as server:
        harness = chain_harness(tmp_path, harness_for, server.url(""), "offset_stated")
        run_id = harness.run()
    outcome = RunLedger(harness.blobs).model_outcomes(run_id)["jira.issues"]
    assert outcome["error"].startswith(f"jira.issues: the API stated {RECORDS} records but {RECORDS - 20} arrived")
