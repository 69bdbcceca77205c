"""The sample ERP database builds the same data on SQLite, PostgreSQL and MariaDB.

The server cases use conftest's `postgres_url` / `mariadb_url`: they skip when the server is down,
except where services are promised (CI=true or KSPYDER_REQUIRE_SERVICES=1), where they fail instead.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from samples.sample_db import ORDER_LINES, ORDERS, create_sample_db, drop_sample_db
from tests.helpers.paths import ROOT


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nested/sample_erp.db"  # the missing folder must be created
        return
    url = request.getfixturevalue(f"{request.param}_url")  # conftest: skips, or fails where services are promised
    yield url
    drop_sample_db(url)


def _dump(url: str) -> tuple[list[tuple], list[tuple]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            orders = connection.execute(sa.select(ORDERS).order_by(ORDERS.c.order_id)).all()
            lines = connection.execute(
                sa.select(ORDER_LINES).order_by(ORDER_LINES.c.order_id, ORDER_LINES.c.line_no)).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in orders], [tuple(row) for row in lines]


def test_counts_keys_and_determinism(db_url: str) -> None:
    create_sample_db(db_url, orders=300, seed=3)
    orders, lines = _dump(db_url)
    assert len(orders) == 300
    assert len({row[0] for row in orders}) == 300
    assert orders[0][0] == "SO-000001" and orders[-1][0] == "SO-000300"
    assert len({(row[0], row[1]) for row in lines}) == len(lines) >= 300
    assert {row[0] for row in lines} == {row[0] for row in orders}  # every order has lines, no orphans

    create_sample_db(db_url, orders=300, seed=3)  # recreating replaces, never appends
    assert _dump(db_url) == (orders, lines)


def test_values_are_typed_and_consistent(db_url: str) -> None:
    create_sample_db(db_url, orders=200, seed=7)
    orders, lines = _dump(db_url)
    per_order: dict[str, Decimal] = {}
    for order_id, _, _, qty, unit_price in lines:
        per_order[order_id] = per_order.get(order_id, Decimal("0")) + qty * Decimal(str(unit_price))
    for order_id, customer_id, email, amount, currency, status, created_at, _note in orders:
        assert Decimal(str(amount)).quantize(Decimal("0.01")) == per_order[order_id]
        assert email.endswith("@example.com") and str(customer_id) in email
        assert currency in ("EUR", "GBP", "USD") and status
        assert created_at.year >= 2023
        if created_at.tzinfo is not None:  # PostgreSQL returns aware values: they must be UTC
            assert created_at.utcoffset() == UTC.utcoffset(None)
    stamps = [row[6].replace(tzinfo=None) for row in orders]
    assert stamps == sorted(stamps)  # grows with the order number, for watermark demos
    notes = [row[7] for row in orders]
    assert any(n is None for n in notes) and any(n and ("555-01" in n or "7946" in n) for n in notes)


def test_seed_changes_the_data(tmp_path: Path) -> None:
    first, second = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    create_sample_db(first, orders=50, seed=1)
    create_sample_db(second, orders=50, seed=2)
    assert _dump(first) != _dump(second)


def test_empty_database_and_bad_count(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    create_sample_db(url, orders=0)
    assert _dump(url) == ([], [])
    with pytest.raises(ValueError):
        create_sample_db(url, orders=-1)


def test_cli_creates_the_default_database(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "samples.sample_db", "--orders", "25"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "25 orders" in result.stderr
    orders, _ = _dump(f"sqlite:///{tmp_path}/.kspyder/sample_erp.db")
    assert len(orders) == 25
