"""A `store: mongo` source end to end through the command line: the sample API -> `main.py run`
(whole documents, PII-stripped, next to a SQL source) -> `main.py aggregate` -> files and a table.
The embedded document store by default; the server at KSPYDER_TEST_MONGO_URI when set."""
from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli.main import cli
from samples.sample_api import data
from samples.sample_api.server import ApiConfig, SampleApi
from tests.helpers.flow import TEST_KEY

CUSTOMERS = 45


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=CUSTOMERS)) as server:
        yield server


def write_manifests(tmp_path: Path, base_url: str, docs: str) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir()
    pagination = {"type": "page_number", "size_param": "per_page", "size": 20, "total_pages_path": "meta.total_pages"}
    sources = {
        docs: {"type": "api", "store": "mongo", "base_url": base_url, "pagination": pagination, "models": {
            "customers": {"path": "/v1/customers", "records": "data", "primary_key": ["id"],
                          "indexes": [{"keys": ["address.country"]}],
                          "columns": {"name": {"path": "full_name", "type": "string", "pii": "hash"},
                                      "created": {"type": "datetime"}}}}},
        "shop": {"type": "api", "base_url": base_url, "models": {
            "products": {"path": "/v1/products", "records": "items", "primary_key": ["sku"],
                         "pagination": {"type": "offset", "limit": 25, "total_path": "total"},
                         "columns": {"sku": {"type": "string", "length": 20}, "price": {"type": "float"}}}}},
    }
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    (folder / "settings.yml").write_text(yaml.safe_dump({
        "target_url": f"sqlite:///{tmp_path}/target.db", "state_dir": str(tmp_path / "state"),
        "storage": {"root": str(tmp_path / "storage")}, "output": {"folder": str(tmp_path / "out")}}))
    (folder / "aggregations.yml").write_text(yaml.safe_dump({"aggregations": {
        "customers_by_country": {
            "source": docs, "collection": "customers",
            "pipeline": [{"$group": {"_id": "$address.country", "customers": {"$sum": 1}}},
                         {"$project": {"_id": 0, "country": "$_id", "customers": 1}},
                         {"$sort": {"country": 1}}],
            "output": {"files": ["json", "csv"], "table": "analytics.customers_by_country"}}}}, sort_keys=False))
    return folder


def invoke(*args: str):
    env = {"KSPYDER_PII_KEY": TEST_KEY}
    if os.environ.get("KSPYDER_TEST_MONGO_URI"):
        env["KSPYDER_MONGO_URI"] = os.environ["KSPYDER_TEST_MONGO_URI"]
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_run_then_aggregate(tmp_path, api, mongo_client, mongo_name) -> None:
    folder = write_manifests(tmp_path, api.base_url, mongo_name)
    first = invoke("--manifests", str(folder), "run", "--apply")
    assert first.exit_code == 0, first.stderr
    assert f"{mongo_name}.customers: {CUSTOMERS} records, 3 pages, {CUSTOMERS} rows upserted" in first.stderr
    second = invoke("--manifests", str(folder), "run")   # no schema change pending: mongo models have no table
    assert second.exit_code == 0, second.stderr

    plan = invoke("--manifests", str(folder), "plan")
    assert plan.exit_code == 0 and mongo_name not in plan.stdout + plan.stderr
    engine = sa.create_engine(f"sqlite:///{tmp_path}/target.db")
    try:
        assert mongo_name not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()

    expected = Counter(data.customer(i)["address"]["country"] for i in range(1, CUSTOMERS + 1))
    result = invoke("--manifests", str(folder), "aggregate")
    assert result.exit_code == 0, result.stderr
    out = tmp_path / "out" / "aggregations"
    assert result.stdout.splitlines() == [
        f"customers_by_country: {len(expected)} documents -> {out / 'customers_by_country.json'}, "
        f"{out / 'customers_by_country.csv'}, table analytics.customers_by_country ({len(expected)} rows) "
        + result.stdout.splitlines()[0].rsplit(" ", 1)[1]]
    assert json.loads((out / "customers_by_country.json").read_text()) == [
        {"customers": expected[c], "country": c} for c in sorted(expected)]
    rows = list(csv.DictReader(io.StringIO((out / "customers_by_country.csv").read_text())))
    assert {r["country"]: int(r["customers"]) for r in rows} == dict(expected)

    # the aggregation's table is known to plan: not a removed source, not pruned
    after = invoke("--manifests", str(folder), "plan", "--prune")
    assert after.exit_code == 0 and "analytics" not in after.stdout, after.stdout

    status = invoke("--manifests", str(folder), "status")
    assert status.exit_code == 0 and status.stdout.count(f"{mongo_name}.customers") == 2


def test_documents_are_whole_and_free_of_raw_pii(tmp_path, api, mongo_name) -> None:
    if os.environ.get("KSPYDER_TEST_MONGO_URI"):
        pytest.skip("reads the embedded store's files")
    folder = write_manifests(tmp_path, api.base_url, mongo_name)
    assert invoke("--manifests", str(folder), "run", "--apply").exit_code == 0
    text = (tmp_path / "state" / "documents" / mongo_name / "customers.jsonl").read_text()
    lines = text.splitlines()
    assert len(lines) == CUSTOMERS
    doc = json.loads(lines[0])
    assert set(doc) >= {"_id", "id", "address", "tags", "notes", "iban", "_kspyder_run_id"}   # undeclared fields kept
    assert doc["created"] == {"$date": doc["created"]["$date"]}   # declared datetime: a BSON date
    for i in range(1, CUSTOMERS + 1):
        raw = data.customer(i)
        for value in (raw["email"], raw["phone"], raw["iban"], raw["full_name"], raw["card_number"]):
            assert value not in text
    assert (tmp_path / "state" / "documents" / mongo_name / "customers.indexes.json").exists()


def test_aggregate_command_reports_unknown_names_and_manifest_errors(tmp_path, api, mongo_name) -> None:
    folder = write_manifests(tmp_path, api.base_url, mongo_name)
    unknown = invoke("--manifests", str(folder), "aggregate", "nope")
    assert unknown.exit_code == 1
    # the expected message kept whole, to be found in the code by grep
    assert unknown.stderr.splitlines()[-1] == "command line unknown aggregation 'nope' (aggregations: customers_by_country)"  # noqa: E501
    (folder / "aggregations.yml").write_text("aggregations:\n  x: {source: shop, collection: products}\n")
    broken = invoke("--manifests", str(folder), "aggregate")
    assert broken.exit_code == 1
    assert broken.stderr.splitlines() == [
        "1 problem in the manifests:",
        "aggregations.yml:2 aggregations.x.source: source 'shop' is not store: mongo, so it has no documents to "
        "aggregate"]


def test_rebuild_drops_and_reloads_a_document_source(tmp_path, api, mongo_name) -> None:
    from shared.config.project import load_project
    from shared.mongo.client import open_documents

    folder = write_manifests(tmp_path, api.base_url, mongo_name)
    assert invoke("--manifests", str(folder), "run", "--apply").exit_code == 0
    uri = os.environ.get("KSPYDER_TEST_MONGO_URI")
    env = {"KSPYDER_MONGO_URI": uri} if uri else {}
    settings = load_project(folder, env={"KSPYDER_PII_KEY": TEST_KEY, **env}).settings
    with open_documents(settings) as client:
        client[mongo_name]["customers"].insert_one({"_id": "stale", "id": "stale"})
        client[mongo_name]["leftover"].insert_one({"_id": 1})
    refused = invoke("--manifests", str(folder), "rebuild", mongo_name)   # no terminal, no --auto-approve
    assert refused.exit_code == 1 and "pass --auto-approve" in refused.stderr
    result = invoke("--manifests", str(folder), "rebuild", mongo_name, "--auto-approve")
    assert result.exit_code == 0, result.stderr
    assert f"Document databases to drop and reload: {mongo_name}" in result.stdout
    with open_documents(settings) as client:
        assert client[mongo_name]["customers"].count_documents({}) == CUSTOMERS
        assert client[mongo_name].list_collection_names() == ["customers"]


def test_validate_checks_aggregations_too(tmp_path, api, mongo_name) -> None:
    folder = write_manifests(tmp_path, api.base_url, mongo_name)
    ok = invoke("--manifests", str(folder), "validate")
    assert ok.exit_code == 0 and "2 sources, 2 models, 1 aggregation (" in ok.stderr
    (folder / "aggregations.yml").write_text("aggregations:\n  x: {source: nope, collection: c}\n")
    broken = invoke("--manifests", str(folder), "validate")
    assert broken.exit_code == 1
    assert broken.stderr.splitlines()[-1] == (f"aggregations.yml:2 aggregations.x.source: unknown source 'nope' "
                                              f"(store: mongo sources: {mongo_name})")


def test_aggregate_command_fails_after_running_the_others(tmp_path, api, mongo_name) -> None:
    folder = write_manifests(tmp_path, api.base_url, mongo_name)
    (folder / "aggregations.yml").write_text(yaml.safe_dump({"aggregations": {
        "bad": {"source": mongo_name, "collection": "customers", "pipeline": [{"$group": {"n": {"$sum": 1}}}]},
        "count": {"source": mongo_name, "collection": "customers", "pipeline": [{"$count": "n"}],
                  "output": {"files": []}},
    }}, sort_keys=False))
    result = invoke("--manifests", str(folder), "aggregate")
    assert result.exit_code == 1
    assert result.stderr.startswith("bad: FAILED: the pipeline failed: ")
    assert result.stdout.startswith("count: 1 document -> no outputs (")
    none = invoke("--manifests", str(folder), "aggregate", "count")
    assert none.exit_code == 0
