"""Issue 17 §1-§2 against real databases built here: `probe <database URL>` drafts a source that loads
as it stands and runs, and the values arrive exactly (bytea/BLOB bytes, enums, arrays, decimals,
the UTC date of a timestamptz read in a Tokyo session, a partitioned table, CamelCase names
snake_cased) in the embedded `main.py run` and in the queue chain alike."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from cli.main import cli
from shared.chain import Chain
from shared.chain.pump import drain
from shared.config.project import load_project
from shared.storage import LocalBlobStore
from shared.storage.queues import LocalQueueStore
from shared.target.dialects import create_target_engine, drop_schema
from tests.helpers.chain import RecordingQueues, applied_target, snapshot
from tests.helpers.flow import TEST_KEY

ENV = {"KSPYDER_PII_KEY": TEST_KEY}
EVERY_BYTE = bytes(range(256))
SOLD_AT = datetime(2024, 3, 1, 23, 30, tzinfo=UTC)   # 2 March in Tokyo, 1 March in UTC


def probe(url: str, *args: str) -> tuple[str, str]:
    result = CliRunner().invoke(cli, ["probe", url, *args], env=ENV)
    assert result.exit_code == 0, result.stderr
    return result.stdout, result.stderr


def write_manifests(folder: Path, connectors: str, target_url: str, tmp_path: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "connector_models.yml").write_text(connectors)
    (folder / "settings.yml").write_text(yaml.safe_dump({
        "target_url": target_url, "state_dir": str(tmp_path / "state"),
        "storage": {"root": str(tmp_path / "storage")}}))
    return folder


def run_embedded(folder: Path) -> None:
    result = CliRunner().invoke(cli, ["--manifests", str(folder), "run", "--apply"], env=ENV)
    assert result.exit_code == 0, result.stderr


def run_chain(folder: Path, tmp_path: Path) -> dict:
    """The same manifests through the queue chain (Paginate, Fetch, Load on local queues) into a
    SQLite target of its own; returns its snapshot."""
    project = load_project(folder, env=ENV)
    blobs, queues = LocalBlobStore(tmp_path / "blobs"), RecordingQueues(LocalQueueStore(tmp_path / "queues"))
    engine = applied_target(project, tmp_path / "chain.db")
    try:
        def make() -> Chain:
            return Chain(project, blobs, queues, lambda: engine)
        with make() as chain:
            run_id = chain.start_run((), trigger="test")
        drain(make, queues, timeout=60)
        with make() as chain:
            status = chain.run_status(run_id)
        assert status["done"] and status["errors"] == [], status["errors"]
        return snapshot(engine, project)
    finally:
        engine.dispose()


def target_rows(url: str, folder: Path) -> tuple[dict, dict]:
    """(snapshot of every model, rows by qualified table as dicts) of a target the embedded run wrote."""
    project = load_project(folder, env=ENV)
    engine = create_target_engine(url, project.sources)
    try:
        rows = {}
        with engine.connect() as connection:
            for ref in project.models():
                table = sa.Table(ref.name, sa.MetaData(), schema=ref.source_name, autoload_with=connection)
                rows[ref.qualified] = [dict(r._mapping) for r in connection.execute(sa.select(table))]
        return snapshot(engine, project), rows
    finally:
        engine.dispose()


# ---------------------------------------------------------------- PostgreSQL source
@pytest.fixture
def pg_source(postgres_url):
    schema = f"kt_src_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as c:
        c.exec_driver_sql(f"CREATE SCHEMA {schema}")
        c.exec_driver_sql(f"SET search_path TO {schema}")
        c.exec_driver_sql("CREATE TYPE mood AS ENUM ('happy', 'sad', 'indifferent')")
        c.exec_driver_sql('CREATE TABLE "InvoiceLine" ("InvoiceLineId" integer PRIMARY KEY, '
                          '"UnitPrice" numeric(10,2) NOT NULL, "Photo" bytea, "SoldAt" timestamptz, "Mood" mood, '
                          '"Tags" text[], "Meta" jsonb, "CustomerEmail" varchar(80), "Note" text)')
        c.exec_driver_sql('INSERT INTO "InvoiceLine" VALUES '
                          "(1, 0.99, %(every)s, %(sold)s, 'indifferent', ARRAY['a','b'], '{\"k\": [1, 2.5]}', "
                          "'ann@example.com', 'call me on +44 20 7946 0958'), "
                          "(2, 1234.50, ''::bytea, NULL, 'sad', '{}', NULL, 'bob@example.org', 'nothing to say'), "
                          "(3, 0.00, NULL, '2024-01-01 00:00:00+00', NULL, NULL, '[]', NULL, NULL)",
                          {"every": EVERY_BYTE, "sold": SOLD_AT})
        c.exec_driver_sql("CREATE TABLE events (id integer, day date, kind text, PRIMARY KEY (id, day)) "
                          "PARTITION BY RANGE (day)")
        for year in (2023, 2024):
            c.exec_driver_sql(f"CREATE TABLE events_{year} PARTITION OF events "
                              f"FOR VALUES FROM ('{year}-01-01') TO ('{year + 1}-01-01')")
        c.exec_driver_sql("INSERT INTO events SELECT g, DATE '2023-06-01' + g * 7, 'k' || g "
                          "FROM generate_series(1, 60) g")
        c.exec_driver_sql('CREATE VIEW "CheapLines" AS SELECT "InvoiceLineId", "UnitPrice" FROM "InvoiceLine" '
                          'WHERE "UnitPrice" < 100')
    # the source session runs in Tokyo: timestamptz values arrive as Tokyo times
    yield f"{postgres_url}?options=-c%20TimeZone%3DAsia/Tokyo", schema
    with engine.begin() as c:
        c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def test_postgresql_schema_probed_then_run_in_both_modes(tmp_path, pg_source):
    url, schema = pg_source
    drafted, report = probe(url, "--schema", schema, "--source", "pagila")
    assert "naming: snake_case" in drafted and "TimeZone" in drafted
    spec = yaml.safe_load(drafted)["sources"]["pagila"]
    models = spec["models"]
    assert set(models) == {"InvoiceLine", "events", "CheapLines"}   # the partitions are read through their parent
    lines = models["InvoiceLine"]
    assert lines["table"] == f"{schema}.InvoiceLine" and lines["primary_key"] == ["InvoiceLineId"]
    assert lines["columns"] == {
        "InvoiceLineId": {"type": "integer"}, "UnitPrice": {"type": "decimal", "precision": 10, "scale": 2},
        "Photo": {"type": "binary"}, "SoldAt": {"type": "datetime"}, "Mood": {"type": "string", "length": 11},
        "Tags": {"type": "json"}, "Meta": {"type": "json"},
        "CustomerEmail": {"type": "string", "length": 80, "pii": "hash"}, "Note": {"type": "text"}}
    assert lines["pii_scan"] == "redact"   # a phone number in the free text
    assert models["events"]["primary_key"] == ["id", "day"] and "primary_key" not in models["CheapLines"]
    assert "partitioned table events" in report and "2 partitions left out" in report
    assert "ann@example.com" not in drafted + report and "+44" not in drafted + report

    # the draft loads as it stands; then two date columns are added over the timestamptz
    target = f"sqlite:///{tmp_path / 'target.db'}"
    folder = write_manifests(tmp_path / "manifests", drafted, target, tmp_path)
    load_project(folder, env=ENV)
    lines["columns"]["SoldOn"] = {"type": "date", "path": "SoldAt"}
    lines["columns"]["SoldOnInTokyo"] = {"type": "date", "path": "SoldAt", "timezone": "Asia/Tokyo"}
    (folder / "connector_models.yml").write_text(yaml.safe_dump({"sources": {"pagila": spec}}, sort_keys=False))

    run_embedded(folder)
    embedded, rows = target_rows(target, folder)
    first, second, third = sorted(rows["pagila.invoice_line"], key=lambda r: r["invoice_line_id"])
    assert first["photo"] == EVERY_BYTE and second["photo"] == b"" and third["photo"] is None
    assert (first["unit_price"], second["unit_price"]) == (Decimal("0.99"), Decimal("1234.50"))
    assert first["sold_at"].replace(tzinfo=UTC) == SOLD_AT
    assert (first["sold_on"], first["sold_on_in_tokyo"]) == (date(2024, 3, 1), date(2024, 3, 2))
    assert (first["mood"], second["mood"], third["mood"]) == ("indifferent", "sad", None)
    assert (first["tags"], second["tags"], first["meta"]) == (["a", "b"], [], {"k": [1, 2.5]})
    assert len(first["customer_email"]) == 64 and "[PHONE]" in first["note"]
    assert len(rows["pagila.events"]) == 60 and len(rows["pagila.cheap_lines"]) == 2

    assert run_chain(folder, tmp_path) == embedded


# ---------------------------------------------------------------- MariaDB source
@pytest.fixture
def maria_source(mariadb_url):
    database = f"kt_src_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as c:
        c.exec_driver_sql(f"CREATE DATABASE {database}")
        c.exec_driver_sql(f"CREATE TABLE {database}.Track (TrackId INT PRIMARY KEY, AlbumId INT NOT NULL, "
                          "Kind ENUM('audio','video') NOT NULL, Bytes VARBINARY(300), Cover BLOB, "
                          "UnitPrice DECIMAL(10,2), Explicit TINYINT(1), AddedAt DATETIME(6), "
                          "Composer VARCHAR(220)) CHARACTER SET utf8mb4")
        c.exec_driver_sql(f"INSERT INTO {database}.Track VALUES "
                          "(1, 1, 'video', %(every)s, %(every)s, 0.99, 1, '2024-03-01 23:30:00.5', 'Angus'), "
                          "(2, 1, 'audio', NULL, '', 1.99, 0, NULL, NULL)", {"every": EVERY_BYTE})
        c.exec_driver_sql(f"CREATE TABLE {database}.PlaylistTrack (PlaylistId INT, TrackId INT, "
                          "PRIMARY KEY (PlaylistId, TrackId))")
        c.exec_driver_sql(f"INSERT INTO {database}.PlaylistTrack VALUES (1, 1), (1, 2), (2, 1)")
    yield mariadb_url, database
    with engine.begin() as c:
        c.exec_driver_sql(f"DROP DATABASE {database}")
    engine.dispose()


def test_mariadb_schema_probed_then_run_in_both_modes(tmp_path, maria_source):
    url, database = maria_source
    drafted, _ = probe(url, "--schema", database, "--source", "chinook")
    models = yaml.safe_load(drafted)["sources"]["chinook"]["models"]
    assert models["PlaylistTrack"]["primary_key"] == ["PlaylistId", "TrackId"]
    assert models["Track"]["columns"] == {
        "TrackId": {"type": "integer"}, "AlbumId": {"type": "integer"}, "Kind": {"type": "string", "length": 5},
        "Bytes": {"type": "binary"}, "Cover": {"type": "binary"},
        "UnitPrice": {"type": "decimal", "precision": 10, "scale": 2}, "Explicit": {"type": "boolean"},
        "AddedAt": {"type": "datetime"}, "Composer": {"type": "string", "length": 220}}
    target = f"sqlite:///{tmp_path / 'target.db'}"
    folder = write_manifests(tmp_path / "manifests", drafted, target, tmp_path)
    run_embedded(folder)
    embedded, rows = target_rows(target, folder)
    one, two = sorted(rows["chinook.track"], key=lambda r: r["track_id"])
    assert (one["bytes"], one["cover"], two["bytes"], two["cover"]) == (EVERY_BYTE, EVERY_BYTE, None, b"")
    assert (one["kind"], one["explicit"], one["unit_price"]) == ("video", True, Decimal("0.99"))
    assert one["added_at"] == datetime(2024, 3, 1, 23, 30, 0, 500000)
    assert len(rows["chinook.playlist_track"]) == 3
    assert run_chain(folder, tmp_path) == embedded


# ---------------------------------------------------------------- SQLite source into every target
@pytest.fixture
def chinook_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'chinook.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql('CREATE TABLE "InvoiceLine" ("InvoiceLineId" INTEGER PRIMARY KEY, '
                          '"InvoiceId" INTEGER NOT NULL, "UnitPrice" NUMERIC(10,2) NOT NULL, '
                          '"Quantity" INTEGER NOT NULL, "Receipt" BLOB, '
                          '"Signature" BLOB)')
        c.exec_driver_sql('INSERT INTO "InvoiceLine" VALUES (?, ?, ?, ?, ?, ?)',
                          [(i, i // 3, f"{i}.99", i % 4 + 1, EVERY_BYTE[i:] + EVERY_BYTE[:i], bytes([i]))
                           for i in range(1, 41)])
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_target(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")


def test_binary_lands_byte_for_byte_in_every_target(tmp_path, chinook_sqlite, any_target):
    source = f"kt_bin_{uuid.uuid4().hex[:8]}"
    drafted, _ = probe(chinook_sqlite, "--source", source)
    spec = yaml.safe_load(drafted)
    spec["sources"][source]["models"]["InvoiceLine"]["columns"]["Signature"]["pii"] = "hash"
    folder = write_manifests(tmp_path / "manifests", yaml.safe_dump(spec, sort_keys=False), any_target, tmp_path)
    try:
        run_embedded(folder)
        run_embedded(folder)   # idempotent: the upsert rewrites the same bytes
        _, rows = target_rows(any_target, folder)
        lines = sorted(rows[f"{source}.invoice_line"], key=lambda r: r["invoice_line_id"])
        assert [bytes(r["receipt"]) for r in lines] == [EVERY_BYTE[i:] + EVERY_BYTE[:i] for i in range(1, 41)]
        assert all(len(r["signature"]) == 64 and not r["signature"].startswith("b'") for r in lines)
        assert [r["unit_price"] for r in lines] == [Decimal(f"{i}.99") for i in range(1, 41)]
        plan = CliRunner().invoke(cli, ["--manifests", str(folder), "plan"], env=ENV)
        assert plan.exit_code == 0 and "no changes" in plan.stdout.lower(), plan.stdout + plan.stderr
    finally:
        project = load_project(folder, env=ENV)
        engine = create_target_engine(any_target, project.sources)
        with engine.begin() as connection:
            drop_schema(connection, source)
        engine.dispose()


def test_extract_writes_binary_as_base64(tmp_path, chinook_sqlite):
    drafted, _ = probe(chinook_sqlite, "--source", "chinook", "--table", "InvoiceLine")
    folder = write_manifests(tmp_path / "manifests", drafted, f"sqlite:///{tmp_path / 't.db'}", tmp_path)
    result = CliRunner().invoke(cli, ["--manifests", str(folder), "extract", "--limit", "1"], env=ENV)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert base64.b64decode(record["receipt"]) == EVERY_BYTE[1:] + EVERY_BYTE[:1]


def test_binary_declared_as_text_fails_naming_model_record_and_column(tmp_path, chinook_sqlite):
    connectors = {"sources": {"chinook": {"type": "sql", "url": chinook_sqlite, "models": {"lines": {
        "table": "InvoiceLine", "primary_key": ["id"],
        "columns": {"id": {"type": "integer", "path": "InvoiceLineId"},
                    "receipt": {"type": "text", "path": "Receipt"}}}}}}}
    folder = write_manifests(tmp_path / "manifests", yaml.safe_dump(connectors), f"sqlite:///{tmp_path / 't.db'}",
                             tmp_path)
    result = CliRunner().invoke(cli, ["--manifests", str(folder), "run", "--apply"], env=ENV)
    assert result.exit_code == 1
    assert ("chinook.lines: record #0, column 'receipt': expected text, got binary data (declare the column type: "
            "binary)") in result.stdout + result.stderr
    assert "\\x" not in result.stdout + result.stderr


def test_probe_drafts_fifteen_tables_in_one_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'wide.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as c:
        for i in range(15):
            c.exec_driver_sql(f"CREATE TABLE t{i:02d} (id INTEGER PRIMARY KEY, name_{i} VARCHAR(40), "
                              "amount NUMERIC(8,2))")
            c.exec_driver_sql(f"INSERT INTO t{i:02d} VALUES (1, 'x', 1.25)")
    engine.dispose()
    drafted, _ = probe(url)
    folder = write_manifests(tmp_path / "manifests", drafted, f"sqlite:///{tmp_path / 't.db'}", tmp_path)
    project = load_project(folder, env=ENV)
    assert len(project.models()) == 15 and project.sources["wide"].naming == "as_is"
    run_embedded(folder)


def test_the_password_becomes_a_variable_and_never_prints(tmp_path, chinook_sqlite, postgres_url):
    secret = "s3cr3t-Pw"
    url = sa.make_url(postgres_url).set(password=secret).render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["probe", url, "--source", "shop", "--table", "nothing_here"], env=ENV)
    assert result.exit_code == 1 and secret not in result.stdout + result.stderr
    drafted, _ = probe(chinook_sqlite, "--source", "chinook")
    assert "${" not in drafted   # no password, no variable
    from shared.probe.sql_target import database_target
    target = database_target(url + ("&" if "?" in url else "?") + "sslmode=prefer&api_token=t0k", "shop")
    assert secret not in target.shown_url and "t0k" not in target.shown_url
    assert target.shown_url.startswith("postgresql+psycopg://postgres:${SHOP_DB_PASSWORD}@")
    assert "api_token=${SHOP_API_TOKEN}" in target.shown_url and "sslmode=prefer" in target.shown_url
    assert target.env_vars == ("SHOP_DB_PASSWORD", "SHOP_API_TOKEN")


def test_names_a_table_key_cannot_hold_are_read_through_a_quoted_query(tmp_path):
    url = f"sqlite:///{tmp_path / 'northwind.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.exec_driver_sql('CREATE TABLE "Order Details" ("OrderID" INTEGER, "ProductID" INTEGER, '
                          '"Unit Price" NUMERIC(10,4), PRIMARY KEY ("OrderID", "ProductID"))')
        c.exec_driver_sql('INSERT INTO "Order Details" VALUES (10248, 11, 14), (10248, 42, 9.8), (10249, 14, 18.6)')
    engine.dispose()
    drafted, _ = probe(url)
    model = yaml.safe_load(drafted)["sources"]["northwind"]["models"]["order_details"]
    assert model["query"] == 'SELECT * FROM "Order Details"' and model["primary_key"] == ["OrderID", "ProductID"]
    assert model["columns"]["unit_price"] == {"type": "decimal", "precision": 10, "scale": 4, "path": "Unit Price"}
    target = f"sqlite:///{tmp_path / 'target.db'}"
    folder = write_manifests(tmp_path / "manifests", drafted, target, tmp_path)
    run_embedded(folder)
    _, rows = target_rows(target, folder)
    assert sorted((r["order_id"], r["product_id"], r["unit_price"]) for r in rows["northwind.order_details"]) == [
        (10248, 11, Decimal("14.0000")), (10248, 42, Decimal("9.8000")), (10249, 14, Decimal("18.6000"))]
