"""The bundled sample ERP database: `orders` and `order_lines`, for the SQL demo and flow tests.

Built with SQLAlchemy Core so one definition creates the same tables on SQLite, PostgreSQL and
MariaDB. Rows come from one seeded random stream, so a given (orders, seed) always yields the same
database, and `created_at` grows with the order number so incremental (watermark) loads have
something meaningful to track.

    python -m samples.sample_db [URL] [--orders N] [--seed S]
"""
from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

DEFAULT_URL = "sqlite:///.kspyder/sample_erp.db"
BATCH_ORDERS = 5000  # rows per executemany: large enough to be fast, small enough to bound memory

METADATA = sa.MetaData()
ORDERS = sa.Table(
    "orders", METADATA,
    sa.Column("order_id", sa.String(20), primary_key=True),
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("customer_email", sa.String(120), nullable=False),
    sa.Column("amount", sa.Numeric(12, 2), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
)
ORDER_LINES = sa.Table(
    "order_lines", METADATA,
    sa.Column("order_id", sa.String(20), sa.ForeignKey("orders.order_id"), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sku", sa.String(32), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
)

_START = datetime(2023, 1, 1, tzinfo=UTC)
_FIRST = ("ada", "ben", "chloe", "dmitri", "elif", "farid", "grace", "hugo", "ines", "jonas", "keiko", "liam")
_LAST = ("andersen", "brown", "costa", "dubois", "fischer", "garcia", "huber", "jansen", "lopez", "rossi", "weber")
_STATUSES = ("new", "paid", "shipped", "delivered", "cancelled", "refunded")
_STATUS_WEIGHTS = (10, 20, 25, 35, 6, 4)
_CURRENCIES = ("EUR", "GBP", "USD")
_PLAIN_NOTES = ("Leave at the back door.", "Gift wrap requested.", "Deliver after 5 pm.",
                "Invoice to head office, PO 2024-118.", "Customer prefers e-mail contact.")


def _email(customer_id: int) -> str:
    """Derived from the id alone, so every order of one customer carries the same address."""
    first = _FIRST[customer_id % len(_FIRST)]
    last = _LAST[(customer_id * 7) % len(_LAST)]
    return f"{first}.{last}{customer_id}@example.com"


def _below(rng: random.Random, n: int) -> int:
    """An int in [0, n): several times faster than randrange, which dominated a 100,000-order build."""
    return int(rng.random() * n)


def _note(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.3:
        return None
    if roll < 0.5:  # the PII a column-level rule cannot know about: only a text scan finds it
        phone = f"+44 20 7946 0{_below(rng, 1000):03d}" if roll < 0.4 else f"(202) 555-01{_below(rng, 100):02d}"
        return f"Customer called from {phone} about the delivery."
    return _PLAIN_NOTES[_below(rng, len(_PLAIN_NOTES))]


def _status(rng: random.Random) -> str:
    roll = _below(rng, sum(_STATUS_WEIGHTS))
    for status, weight in zip(_STATUSES, _STATUS_WEIGHTS):
        if roll < weight:
            return status
        roll -= weight
    raise AssertionError("unreachable: roll < sum of weights")


def generate(orders: int, seed: int) -> Iterator[tuple[dict, list[dict]]]:
    """(order row, its line rows) in order-id order, from one random stream."""
    rng = random.Random(seed)
    customers = max(1, orders // 4)
    for number in range(1, orders + 1):
        order_id = f"SO-{number:06d}"
        lines = [{"order_id": order_id, "line_no": line_no, "sku": f"SKU-{1 + _below(rng, 200):05d}",
                  "qty": 1 + _below(rng, 5), "unit_price": Decimal(99 + _below(rng, 49901)).scaleb(-2)}
                 for line_no in range(1, 2 + _below(rng, 4))]
        customer_id = 1 + _below(rng, customers)
        row = {"order_id": order_id, "customer_id": customer_id, "customer_email": _email(customer_id),
               "amount": sum((line["qty"] * line["unit_price"] for line in lines), Decimal("0.00")),
               "currency": _CURRENCIES[_below(rng, len(_CURRENCIES))], "status": _status(rng),
               "created_at": _START + timedelta(seconds=number * 300 + _below(rng, 300)),
               "note": _note(rng)}
        yield row, lines


def _ensure_sqlite_folder(url: sa.URL) -> None:
    """SQLite creates the file but not its folder; the default URL points into .kspyder/."""
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _insert(connection: sa.Connection, orders: list[dict], lines: list[dict]) -> None:
    if orders:
        connection.execute(ORDERS.insert(), orders)
        connection.execute(ORDER_LINES.insert(), lines)


def create_sample_db(url: str, orders: int = 1000, seed: int = 7) -> None:
    """(Re)create both tables at `url` and fill them; existing tables of these names are dropped."""
    if orders < 0:
        raise ValueError("orders must be >= 0")
    parsed = sa.make_url(url)
    _ensure_sqlite_folder(parsed)
    engine = sa.create_engine(parsed)
    try:
        METADATA.drop_all(engine)
        METADATA.create_all(engine)
        with engine.begin() as connection:
            batch_orders: list[dict] = []
            batch_lines: list[dict] = []
            for row, lines in generate(orders, seed):
                batch_orders.append(row)
                batch_lines.extend(lines)
                if len(batch_orders) >= BATCH_ORDERS:
                    _insert(connection, batch_orders, batch_lines)
                    batch_orders, batch_lines = [], []
            _insert(connection, batch_orders, batch_lines)
    finally:
        engine.dispose()


def drop_sample_db(url: str) -> None:
    """Remove the two tables again, for tests that borrow a shared database."""
    engine = sa.create_engine(url)
    try:
        METADATA.drop_all(engine)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m samples.sample_db", description="Create the sample ERP database.")
    parser.add_argument("url", nargs="?", default=DEFAULT_URL, help=f"SQLAlchemy URL (default {DEFAULT_URL})")
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    shown = sa.make_url(args.url).render_as_string(hide_password=True)
    try:
        create_sample_db(args.url, orders=args.orders, seed=args.seed)
    except (sa.exc.SQLAlchemyError, ValueError, OSError) as exc:
        print(f"sample DB: cannot create {shown}: {exc}", file=sys.stderr)
        return 1
    print(f"sample DB: {args.orders} orders written to {shown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
