"""Issue 12 §8: a SQL source is read inside a read-only transaction, in both modes (the embedded
extractor and the queue chain's `SqlPages` share `SqlExtractor.raw_pages`). Validation refuses
anything but a SELECT (tests/broken_manifests/query_not_read_only.yml); these tests prove the
transaction catches what no parser sees: a function that writes."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from shared.chain.page_fetchers import SqlPages
from shared.errors import ExtractError
from shared.extract.sql import SqlExtractor
from shared.pii.stripper import PiiStripper
from tests.helpers.flow import extract_all, project_for

COLUMNS = {"id": {"type": "integer"}, "ro": {"type": "string"}}


@pytest.fixture
def pg_schema(postgres_url):
    schema = f"ro_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        connection.exec_driver_sql(f"CREATE TABLE {schema}.items (id integer primary key)")
        connection.exec_driver_sql(f"INSERT INTO {schema}.items VALUES (1), (2), (3)")
        connection.exec_driver_sql(f"CREATE TABLE {schema}.audit (n integer)")
        connection.exec_driver_sql(f"CREATE FUNCTION {schema}.bump() RETURNS integer LANGUAGE sql AS "
                                   f"'INSERT INTO {schema}.audit VALUES (1) RETURNING n'")
    yield engine, schema
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def project(tmp_path, url, query, key=("id",)):
    return project_for(tmp_path, {"erp": {"type": "sql", "url": url, "models": {"m": {
        "query": query, "primary_key": list(key), "chunk_size": 2, "columns": COLUMNS}}}})


def test_postgresql_reads_in_a_read_only_transaction_in_both_modes(tmp_path, postgres_url, pg_schema):
    _, schema = pg_schema
    p = project(tmp_path, postgres_url,
                f"SELECT id, current_setting('transaction_read_only') AS ro FROM {schema}.items")
    records, _ = extract_all(p, "erp.m")
    assert [r["ro"] for r in records] == ["on"] * 3
    [ref] = p.models(["erp.m"])
    chunk, after = SqlPages(p, ref).chunk(None, 0)          # the queue chain's Fetch step
    assert [r["ro"] for r in chunk] == ["on", "on"] and after == (2,)


def test_postgresql_a_writing_function_fails_and_writes_nothing(tmp_path, postgres_url, pg_schema):
    engine, schema = pg_schema
    p = project(tmp_path, postgres_url, f"SELECT id, CAST({schema}.bump() AS text) AS ro FROM {schema}.items")
    with pytest.raises(ExtractError, match=r"erp\.m: the source database failed: .*read-only transaction"):
        extract_all(p, "erp.m")
    [ref] = p.models(["erp.m"])
    with pytest.raises(ExtractError, match="read-only transaction"):
        SqlPages(p, ref).chunk(None, 0)
    with engine.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT count(*) FROM {schema}.audit").scalar() == 0


def test_sqlite_reads_with_query_only_and_sets_it_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'src.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE items (id integer primary key)")
        connection.exec_driver_sql("INSERT INTO items VALUES (1), (2)")
    p = project(tmp_path, url, "SELECT id, CAST((SELECT query_only FROM pragma_query_only) AS TEXT) AS ro FROM items")
    [ref] = p.models(["erp.m"])
    extractor = SqlExtractor(ref, PiiStripper.for_model(ref.model, p.settings.pii, ref.pii_scan), engine=engine)
    assert [r["ro"] for r in extractor.records()] == ["1", "1"]
    with engine.connect() as connection:   # the same pooled connection, writable again for its next user
        assert connection.exec_driver_sql("PRAGMA query_only").scalar() == 0
    engine.dispose()


def test_mariadb_reads_inside_start_transaction_read_only(tmp_path, mariadb_url):
    table = f"ro_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE {table} (id integer primary key)")
        connection.exec_driver_sql(f"INSERT INTO {table} VALUES (1), (2)")
    try:
        p = project(tmp_path, mariadb_url, f"SELECT id, CAST(id AS CHAR) AS ro FROM {table}")
        records, _ = extract_all(p, "erp.m")
        assert [r["id"] for r in records] == [1, 2]
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP TABLE {table}")
        engine.dispose()
