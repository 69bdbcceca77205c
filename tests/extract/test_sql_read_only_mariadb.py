"""Issue 12 §8 on MariaDB: a SQL source's query runs inside `START TRANSACTION READ ONLY`, so a
stored function that writes, which no parser sees in a plain SELECT, is refused by the server in
the embedded extractor and in the queue chain's `SqlPages` (keyset chunks and the keyless stream),
and nothing is written. (`@@tx_read_only` shows the session default, not the transaction's mode,
so the proof is a write the server refuses; the control shows the same call writes elsewhere.)"""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from shared.chain.page_fetchers import SqlPages
from shared.errors import ExtractError
from tests.helpers.flow import extract_all, project_for

COLUMNS = {"id": {"type": "integer"}, "ro": {"type": "string"}}
REFUSED = r"erp\.m: the source database failed: OperationalError: .*Cannot execute statement in a READ ONLY transaction"


@pytest.fixture
def writing_function(mariadb_url):
    """A table of three items, an audit table, and a function that inserts into the audit table."""
    suffix = uuid.uuid4().hex[:10]
    items, audit, bump = f"ro_items_{suffix}", f"ro_audit_{suffix}", f"ro_bump_{suffix}"
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE TABLE {items} (id integer primary key)")
        connection.exec_driver_sql(f"INSERT INTO {items} VALUES (1), (2), (3)")
        connection.exec_driver_sql(f"CREATE TABLE {audit} (n integer)")
        connection.exec_driver_sql(f"CREATE FUNCTION {bump}() RETURNS integer MODIFIES SQL DATA "
                                   f"BEGIN INSERT INTO {audit} VALUES (1); RETURN 1; END")

    def written() -> int:
        with engine.connect() as connection:
            return connection.exec_driver_sql(f"SELECT COUNT(*) FROM {audit}").scalar_one()

    yield items, bump, written
    with engine.begin() as connection:
        connection.exec_driver_sql(f"DROP FUNCTION {bump}")
        connection.exec_driver_sql(f"DROP TABLE {items}")
        connection.exec_driver_sql(f"DROP TABLE {audit}")
    engine.dispose()


def project(tmp_path, url, query, key):
    return project_for(tmp_path, {"erp": {"type": "sql", "url": url, "models": {"m": {
        "query": query, "primary_key": list(key), "chunk_size": 2, "columns": COLUMNS}}}})


def test_the_function_writes_outside_a_read_only_transaction(mariadb_url, writing_function):
    """The control: without kspyder's transaction the same call writes, so the tests below can fail."""
    items, bump, written = writing_function
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"SELECT {bump}() FROM {items}").all()
    engine.dispose()
    assert written() == 3


@pytest.mark.parametrize("key", [("id",), ()], ids=["keyset", "keyless"])
def test_a_writing_function_is_refused_in_both_modes_and_writes_nothing(tmp_path, mariadb_url, writing_function, key):
    items, bump, written = writing_function
    p = project(tmp_path, mariadb_url, f"SELECT id, CAST({bump}() AS CHAR) AS ro FROM {items}", key)
    with pytest.raises(ExtractError, match=REFUSED):
        extract_all(p, "erp.m")                                # main.py run / extract
    [ref] = p.models(["erp.m"])
    with pytest.raises(ExtractError, match=REFUSED):           # the queue chain's Fetch step
        if key:
            SqlPages(p, ref).chunk(None, 0)
        else:
            list(SqlPages(p, ref).stream())
    assert written() == 0


def test_a_plain_query_still_reads_every_row_in_both_modes(tmp_path, mariadb_url, writing_function):
    items, _, _ = writing_function
    p = project(tmp_path, mariadb_url, f"SELECT id, CAST(@@in_transaction AS CHAR) AS ro FROM {items}", ("id",))
    records, _ = extract_all(p, "erp.m")
    assert [(r["id"], r["ro"]) for r in records] == [(1, "1"), (2, "1"), (3, "1")]   # inside a transaction
    [ref] = p.models(["erp.m"])
    chunk, after = SqlPages(p, ref).chunk((2,), 2)
    assert [r["id"] for r in chunk] == [3] and after is None
