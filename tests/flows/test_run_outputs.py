"""`run` also writes files when settings ask, and `rebuild` / `apply --refill` repopulate through the
real pipeline (SQLite; the three-database round trips live in tests/schema/test_plan_apply.py)."""
from __future__ import annotations

import csv

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli.main import cli
from samples.sample_api.server import ApiConfig, SampleApi
from shared.target.dialects import create_target_engine
from tests.helpers.flow import TEST_KEY


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=75)) as server:
        yield server


def write(tmp_path, api_url, extra_settings=None, columns=None):
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    model = {"path": "/v1/customers", "records": "data", "params": {"per_page": 30}, "primary_key": ["id"],
             "pagination": {"type": "page_number", "total_pages_path": "meta.total_pages"},
             "columns": columns or {"id": {"type": "integer"}, "city": {"path": "address.city", "type": "string"}}}
    sources = {"shop": {"type": "api", "base_url": api_url, "models": {"customers": model}}}
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": sources}))
    settings = {"target_url": f"sqlite:///{tmp_path / 'target.db'}", "storage": {"root": str(tmp_path / "storage")},
                **(extra_settings or {})}
    (folder / "settings.yml").write_text(yaml.safe_dump(settings))
    return folder


def invoke(folder, *args):
    return CliRunner().invoke(cli, ["--manifests", str(folder), *args], env={"KSPYDER_PII_KEY": TEST_KEY})


def count(tmp_path) -> int:
    engine = create_target_engine(f"sqlite:///{tmp_path / 'target.db'}", ["shop"])
    with engine.connect() as connection:
        n = connection.execute(sa.text("SELECT COUNT(*) FROM shop.customers")).scalar_one()
    engine.dispose()
    return n


def test_run_writes_files_when_settings_ask(tmp_path, api):
    folder = write(tmp_path, api.base_url, {"output": {"format": "csv", "folder": str(tmp_path / "out")}})
    result = invoke(folder, "run", "--apply")
    assert result.exit_code == 0, result.stderr
    with (tmp_path / "out" / "shop.customers.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 75
    assert count(tmp_path) == 75


def test_rebuild_and_refill_use_the_real_pipeline(tmp_path, api):
    folder = write(tmp_path, api.base_url)
    assert invoke(folder, "run", "--apply").exit_code == 0
    rebuilt = invoke(folder, "rebuild", "--auto-approve")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert count(tmp_path) == 75
    # a type change replaces the table (empty); --refill extracts it again right away
    write(tmp_path, api.base_url,
          columns={"id": {"type": "bigint"}, "city": {"path": "address.city", "type": "string"}})
    applied = invoke(folder, "apply", "--auto-approve", "--refill")
    assert applied.exit_code == 0, applied.output
    assert "-/+ replace table shop.customers" in applied.stdout
    assert count(tmp_path) == 75
    assert invoke(folder, "plan").exit_code == 0
