"""`main.py run` end to end: sample API and sample SQL database -> PII stripping -> SQLite,
PostgreSQL and MariaDB; then every text column of every table is scanned for planted PII."""
from __future__ import annotations

import uuid

import pytest
import requests
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli.main import cli
from samples.sample_api.server import ApiConfig, SampleApi
from samples.sample_db import create_sample_db
from shared.target.dialects import create_target_engine, drop_schema
from tests.helpers.chain import shop_models
from tests.helpers.flow import TEST_KEY, write_manifests

CUSTOMERS, ORDERS = 130, 60


@pytest.fixture(scope="module")
def api():
    with SampleApi(ApiConfig(customers=CUSTOMERS, events=70)) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")


@pytest.fixture()
def names():
    suffix = uuid.uuid4().hex[:6]
    return f"kt_run_shop_{suffix}", f"kt_run_erp_{suffix}"


def manifests(tmp_path, api_url, erp_url, target_url, names):
    shop, erp = names
    sources = {
        shop: {"type": "api", "base_url": api_url, "throttle": {"concurrency": 4},
               "models": {name: model for name, model in shop_models().items() if name in ("customers", "events")}},
        erp: {"type": "sql", "url": erp_url,
              "models": {"orders": {"table": "orders", "primary_key": ["order_id"], "chunk_size": 16,
                                    "pii_scan": "redact",
                                    "columns": {"order_id": {"type": "string", "length": 20},
                                                "email": {"path": "customer_email", "type": "string", "pii": "hash"},
                                                "amount": {"type": "decimal", "precision": 12, "scale": 2},
                                                "note": {"type": "text"}}}}},
    }
    return write_manifests(tmp_path, sources, {"target_url": target_url, "state_dir": str(tmp_path / "state"),
                                               "storage": {"root": str(tmp_path / "storage")}})


def planted_pii(api_url, erp_url) -> set[str]:
    values: set[str] = set()
    for page in range(1, 7):
        for c in requests.get(f"{api_url}/v1/customers", params={"page": page, "per_page": 25},
                              timeout=30).json()["data"]:
            values |= {c["email"], c["full_name"], c["phone"], c["iban"], c["iban"].replace(" ", "")}
    for e in requests.get(f"{api_url}/v1/events", params={"top": 100}, timeout=30).json()["value"]:
        values.add(e["payload"]["actor_email"])
    engine = sa.create_engine(erp_url)
    with engine.connect() as connection:
        values |= {row[0] for row in connection.execute(sa.text("SELECT customer_email FROM orders"))}
    engine.dispose()
    return values


def all_text(engine, schemas) -> str:
    chunks = []
    inspector = sa.inspect(engine)
    with engine.connect() as connection:
        for schema in schemas:
            for table in inspector.get_table_names(schema=schema):
                t = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=connection)
                for row in connection.execute(sa.select(t)):
                    chunks.extend(str(v) for v in row)
    return "\n".join(chunks)


def test_run_lands_every_record_without_pii_and_is_idempotent(tmp_path, api, target, names):
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_sample_db(erp_url, orders=ORDERS)
    folder = manifests(tmp_path, api.base_url, erp_url, target, names)
    runner = CliRunner()
    env = {"KSPYDER_PII_KEY": TEST_KEY}
    engine = create_target_engine(target, names)
    try:
        refused = runner.invoke(cli, ["--manifests", str(folder), "run"], env=env)
        assert refused.exit_code == 1 and "run `main.py apply`" in refused.stderr
        for _attempt in range(2):
            result = runner.invoke(cli, ["--manifests", str(folder), "run", "--apply"], env=env)
            assert result.exit_code == 0, result.stderr
            with engine.connect() as connection:
                counts = {t: connection.execute(sa.text(f"SELECT COUNT(*) FROM {s}.{t}")).scalar_one()
                          for s, t in ((names[0], "customers"), (names[0], "events"), (names[1], "orders"))}
            assert counts == {"customers": CUSTOMERS, "events": 70, "orders": ORDERS}
        text = all_text(engine, names)
        assert text, "the target holds data"
        leaked = sorted(v for v in planted_pii(api.base_url, erp_url) if v and v in text)
        assert leaked == []
        status = runner.invoke(cli, ["--manifests", str(folder), "status"], env=env)
        assert status.stdout.count("succeeded") == 2
    finally:
        with engine.begin() as connection:
            for schema in names:
                if schema in sa.inspect(connection).get_schema_names():
                    drop_schema(connection, schema)
        engine.dispose()


def test_the_scan_process_changes_nothing_in_the_data(tmp_path, api, names):
    """The same run with the free-text scan in the scan process (the default) and on the run's
    thread (`pii.scan_process: false`) lands the same rows."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_sample_db(erp_url, orders=ORDERS)
    env = {"KSPYDER_PII_KEY": TEST_KEY}
    landed = {}
    for scan_process in (True, False):
        folder_root = tmp_path / f"scan_process_{scan_process}"
        folder_root.mkdir()
        target = f"sqlite:///{folder_root / 'target.db'}"
        folder = manifests(folder_root, api.base_url, erp_url, target, names)
        settings = yaml.safe_load((folder / "settings.yml").read_text())
        (folder / "settings.yml").write_text(yaml.safe_dump({**settings, "pii": {"scan_process": scan_process}}))
        result = CliRunner().invoke(cli, ["--manifests", str(folder), "run", "--apply"], env=env)
        assert result.exit_code == 0, result.stderr
        assert "warning" not in result.stderr   # no fallback from the scan process
        engine = create_target_engine(target, names)
        with engine.connect() as connection:
            landed[scan_process] = {
                table: [tuple(row) for row in connection.execute(sa.text(
                    f"SELECT * FROM {schema}.{table} ORDER BY 1"))]
                for schema, table in ((names[0], "customers"), (names[1], "orders"))}
        engine.dispose()
    meta = 2   # _kspyder_run_id, _kspyder_loaded_at: the last two columns
    strip_meta = {t: [row[:-meta] for row in rows] for t, rows in landed[True].items()}
    assert strip_meta == {t: [row[:-meta] for row in rows] for t, rows in landed[False].items()}
    assert any("[EMAIL]" in str(row) or "[PHONE]" in str(row) for row in strip_meta["customers"])
