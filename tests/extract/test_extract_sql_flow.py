"""The SQL connector on SQLite, PostgreSQL and MariaDB: keyset chunks, queries, streaming, errors."""
from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import pytest
import sqlalchemy as sa

from samples.sample_db import create_sample_db
from shared.errors import ExtractError
from tests.helpers.flow import extract_all, project_for

ORDERS = 123
ORDER_COLUMNS = {
    "order_id": {"type": "string", "length": 20},
    "customer_id": {"type": "integer"},
    "email": {"path": "customer_email", "type": "string", "pii": "hash"},
    "amount": {"type": "decimal", "precision": 12, "scale": 2},
    "created_at": {"type": "datetime"},
    "note": {"type": "text"},
}


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def source_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'erp.db'}"
    else:
        url = request.getfixturevalue("postgres_url" if request.param == "postgresql" else "mariadb_url")
    create_sample_db(url, orders=ORDERS)
    yield url
    if request.param != "sqlite":
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            for table in ("order_lines", "orders"):
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


def sql_project(tmp_path, url, model):
    return project_for(tmp_path, {"erp": {"type": "sql", "url": url, "models": {"m": model}}})


def test_table_in_keyset_chunks_returns_every_row_once_in_key_order(tmp_path, source_url):
    project = sql_project(tmp_path, source_url, {"table": "orders", "primary_key": ["order_id"], "chunk_size": 10,
                                                 "columns": ORDER_COLUMNS})
    records, stats = extract_all(project, "erp.m")
    ids = [r["order_id"] for r in records]
    assert len(ids) == ORDERS and ids == sorted(set(ids))
    assert stats.pages == -(-ORDERS // 10)
    first = records[0]
    assert isinstance(first["amount"], Decimal) and first["created_at"].tzinfo == UTC
    assert len(first["email"]) == 64 and "@" not in first["email"]


def test_query_with_composite_key(tmp_path, source_url):
    project = sql_project(tmp_path, source_url, {
        "query": "SELECT order_id, line_no, qty FROM order_lines", "primary_key": ["order_id", "line_no"],
        "chunk_size": 7,
        "columns": {"order_id": {"type": "string"}, "line_no": {"type": "integer"}, "qty": {"type": "integer"}}})
    records, _ = extract_all(project, "erp.m")
    keys = [(r["order_id"], r["line_no"]) for r in records]
    assert keys == sorted(set(keys))
    engine = sa.create_engine(source_url)
    with engine.connect() as connection:
        assert len(keys) == connection.execute(sa.text("SELECT COUNT(*) FROM order_lines")).scalar_one()
    engine.dispose()


def test_without_primary_key_the_query_is_streamed(tmp_path, source_url):
    project = sql_project(tmp_path, source_url,
                          {"table": "orders", "chunk_size": 50, "columns": {"order_id": {"type": "string"}}})
    records, stats = extract_all(project, "erp.m")
    assert len({r["order_id"] for r in records}) == ORDERS and stats.pages == 3


def test_pii_scan_applies_to_sql_text(tmp_path, source_url):
    project = sql_project(tmp_path, source_url, {"table": "orders", "primary_key": ["order_id"], "pii_scan": "redact",
                                                 "columns": {"order_id": {"type": "string"}, "note": {"type": "text"},
                                                             "customer_email": {"type": "string"}}})
    records, _ = extract_all(project, "erp.m")
    assert all("@" not in (r["customer_email"] or "") for r in records)


def test_missing_table_and_column_are_clear_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_sample_db(url, orders=5)
    with pytest.raises(ExtractError, match=r"erp.m: table 'nope' not found in the source database"):
        extract_all(sql_project(tmp_path, url, {"table": "nope", "columns": {"a": {"type": "text"}}}), "erp.m")
    with pytest.raises(ExtractError, match=r"erp.m: table 'orders' has no column\(s\) colour"):
        extract_all(sql_project(tmp_path, url, {"table": "orders", "columns": {"colour": {"type": "text"}}}), "erp.m")


def test_limit_on_sql(tmp_path):
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_sample_db(url, orders=50)
    model = {"table": "orders", "primary_key": ["order_id"], "chunk_size": 8,
             "columns": {"order_id": {"type": "string"}}}
    records, stats = extract_all(sql_project(tmp_path, url, model), "erp.m", limit=20)
    assert len(records) == 20 and stats.truncated_by == "limit"


def test_a_chunk_can_be_re_read_from_its_resume_key(tmp_path):
    from shared.extract.factory import build_extractor
    from shared.extract.sql import SqlExtractor

    url = f"sqlite:///{tmp_path / 'erp.db'}"
    create_sample_db(url, orders=30)
    project = sql_project(tmp_path, url, {"table": "orders", "primary_key": ["order_id"], "chunk_size": 8,
                                          "columns": {"order_id": {"type": "string"}}})
    [ref] = project.models(["erp.m"])
    pages = list(build_extractor(project, ref).pages())
    assert pages[0].resume_after is None and pages[2].resume_after == (pages[1].records[-1]["order_id"],)
    again = SqlExtractor(ref, build_extractor(project, ref).stripper, after=pages[2].resume_after)
    assert [r["order_id"] for r in again.records()] == [r["order_id"] for p in pages[2:] for r in p.records]
