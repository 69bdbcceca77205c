"""One writer of a queue-chain page at a time.

Two live copies of the same Load message (a duplicate delivery, or a function outliving its message
lease) both write a keyless model's page into the run's staging table. Each deletes the page's rows
and writes them again, in one transaction; this lock makes the second wait for the first's commit,
so its delete sees (and replaces) what the first wrote, and the page is in the table once. PostgreSQL
takes a transaction-scoped advisory lock; MariaDB a named lock, released after the transaction;
SQLite needs none: it has one writer at a time, and the transaction writes first.
"""
from __future__ import annotations

import hashlib

import sqlalchemy as sa

from shared.target.dialects import MYSQL_FAMILY, POSTGRESQL

WAIT_SECONDS = 120   # a page's write takes seconds; past this the holder is stuck, and the step retries


class PageLockTimeout(Exception):
    """Another copy of the page held its lock longer than WAIT_SECONDS."""


def _digest(name: str) -> bytes:
    return hashlib.sha256(name.encode("utf-8")).digest()


def lock_page(connection: sa.Connection, name: str) -> None:
    """Take the page's lock inside the connection's transaction (PostgreSQL: until it ends)."""
    dialect = connection.dialect.name
    if dialect == POSTGRESQL:
        key = int.from_bytes(_digest(name)[:8], "big", signed=True)
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif dialect in MYSQL_FAMILY:
        taken = connection.execute(sa.text("SELECT GET_LOCK(:name, :wait)"),
                                   {"name": _mysql_name(name), "wait": WAIT_SECONDS}).scalar()
        if taken != 1:
            raise PageLockTimeout(f"another copy of this page held its lock over {WAIT_SECONDS}s")


def unlock_page(connection: sa.Connection, name: str) -> None:
    """Release a MariaDB named lock once the transaction is over (a no-op elsewhere)."""
    if connection.dialect.name in MYSQL_FAMILY:
        connection.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": _mysql_name(name)})


def _mysql_name(name: str) -> str:
    return "kspyder_page_" + _digest(name).hex()[:40]   # lock names are at most 64 characters
