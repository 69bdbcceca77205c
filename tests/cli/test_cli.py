"""The command line as a user meets it: exit codes, stdout vs stderr, files, masked secrets."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.main import cli
from samples.sample_api.server import ApiConfig, SampleApi
from tests.helpers.flow import TEST_KEY
from tests.helpers.paths import ROOT


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=120, products=50)) as server:
        yield server


def write_manifests(folder: Path, base_url: str, extra_sources: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sources = {"shop": {"type": "api", "base_url": base_url, "throttle": {"backoff": 0.01, "max_retries": 1},
                        "pagination": {"type": "page_number", "size_param": "per_page", "size": 50,
                                       "total_pages_path": "meta.total_pages"},
                        "models": {
                            "customers": {"path": "/v1/customers_plain", "records": "data", "primary_key": ["id"],
                                          "columns": {"id": {"type": "integer"},
                                                      "name": {"path": "full_name", "type": "string", "pii": "hash"},
                                                      "email": {"type": "string", "pii": "drop"},
                                                      "tags": {"type": "json"}, "notes": {"type": "text"}}},
                            "broken": {"path": "/v1/status/403", "columns": {"id": {"type": "integer"}}}}}}
    sources.update(extra_sources or {})
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    return folder


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(cli, list(args), env={"KSPYDER_PII_KEY": TEST_KEY, **(env or {})}, catch_exceptions=False)


def test_extract_prints_json_lines_on_stdout_and_the_summary_on_stderr(tmp_path, api):
    folder = write_manifests(tmp_path / "m", api.base_url)
    result = invoke("--manifests", str(folder), "extract", "shop.customers")
    assert result.exit_code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == list(range(1, 121))
    assert set(rows[0]) == {"id", "name", "tags", "notes"}
    assert "shop.customers: 120 records, 3 pages" in result.stderr


def test_extract_writes_csv_with_model_columns(tmp_path, api):
    folder = write_manifests(tmp_path / "m", api.base_url)
    out = tmp_path / "out"
    result = invoke("--manifests", str(folder), "extract", "shop.customers", "--out", "csv", "--dest", str(out),
                    "--limit", "10")
    assert result.exit_code == 0, result.stderr
    with (out / "shop.customers.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "name", "tags", "notes"] and len(rows) == 10
    assert isinstance(json.loads(rows[0]["tags"]), list)


def test_a_failed_model_keeps_the_last_good_file_and_exits_1(tmp_path, api):
    folder = write_manifests(tmp_path / "m", api.base_url)
    out = tmp_path / "out"
    out.mkdir()
    (out / "shop.broken.json").write_text("[\"last good\"]\n")
    result = invoke("--manifests", str(folder), "extract", "shop", "--out", "json", "--dest", str(out))
    assert result.exit_code == 1
    assert "shop.broken: FAILED after 0 records: GET " in result.stderr and "HTTP 403" in result.stderr
    assert (out / "shop.broken.json").read_text() == "[\"last good\"]\n"
    assert len(json.loads((out / "shop.customers.json").read_text())) == 120
    assert sorted(p.name for p in out.iterdir()) == ["shop.broken.json", "shop.customers.json"]  # no temp files left


def test_validate_reports_every_problem_and_exits_1(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "connector_models.yml").write_text("sources:\n  s:\n    type: api\n    base_url: nope\n    modelz: {}\n")
    result = invoke("--manifests", str(folder), "validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "3 problems in the manifests:",
        "connector_models.yml:2 sources.s.models: required key is missing",
        "connector_models.yml:4 sources.s.base_url: base_url must start with http:// or https://",
        "connector_models.yml:5 sources.s.modelz: unknown key 'modelz' (did you mean 'models'?); expected one of: "
        "type, base_url, auth, headers, throttle, pagination, responses, models, description, schedule, "
        "allowed_origins, store, naming",
    ]


def test_validate_ok_on_the_shipped_manifests():
    result = invoke("--manifests", str(ROOT / "manifests"), "validate")
    assert result.exit_code == 0, result.stderr
    assert "manifests OK: 2 sources, 8 models" in result.stderr


def test_unknown_selector_lists_what_exists(tmp_path, api):
    folder = write_manifests(tmp_path / "m", api.base_url)
    result = invoke("--manifests", str(folder), "extract", "shop.custmers")
    assert result.exit_code == 1
    assert "unknown model 'shop.custmers' (models of shop: customers, broken)" in result.stderr


def test_credentials_never_reach_the_terminal(tmp_path, api):
    secret = "hunter2-very-secret"
    folder = write_manifests(tmp_path / "m", api.base_url, {
        "erp": {"type": "sql", "url": "postgresql+psycopg://kspyder:${ERP_PASSWORD}@127.0.0.1:1/db",
                "models": {"t": {"table": "t", "columns": {"a": {"type": "text"}}}}}})
    result = invoke("--manifests", str(folder), "-vv", "extract", "erp", env={"ERP_PASSWORD": secret})
    assert result.exit_code == 1
    assert "erp.t: FAILED" in result.stderr
    assert secret not in result.stderr and secret not in result.stdout


def test_demo_runs_on_a_fresh_checkout(tmp_path, monkeypatch, capsys):
    """The README's first command (`make demo` runs `python -m samples.demo`)."""
    import shutil

    from samples import demo

    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    # the demo sets SAMPLE_API_URL, ERP_DB_URL and a demo key in its own environment: keep them out of other tests
    kept = {k: v for k, v in os.environ.items() if k not in ("SAMPLE_API_URL", "ERP_DB_URL")}
    monkeypatch.setattr(os, "environ", kept)
    assert demo.main() == 0
    captured = capsys.readouterr()
    assert "Active customers by city" in captured.out and "Orders by status" in captured.out
    assert "succeeded" in captured.out  # the status table
    assert "Monthly revenue (analytics.monthly_revenue" in captured.out   # manifests/transformations.yml ran
    import sqlalchemy as sa

    from shared.target.dialects import create_target_engine
    engine = create_target_engine(f"sqlite:///{tmp_path / '.kspyder' / 'target.db'}", ["shop", "erp"])
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM shop.customers")).scalar_one() > 300
        notes = " ".join(r[0] or "" for r in connection.execute(sa.text("SELECT notes FROM shop.customers")))
        emails = [r[0] for r in connection.execute(sa.text("SELECT customer_email FROM erp.orders"))]
    engine.dispose()
    assert "@" not in notes and all("@" not in e for e in emails)  # scanned, hashed
