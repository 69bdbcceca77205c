"""Incremental models as the tests write them: the sample API's customers (`updated_since`,
`updated_at`) and a SQLite source table of items, three rows to a minute of `updated_at`."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

CUSTOMERS = 300
PAGE = 50
BASE = datetime(2024, 1, 1)


def customers_model(**incremental) -> dict:
    return {"path": "/v1/customers", "records": "data", "primary_key": ["id"],
            "pagination": {"type": "page_number", "size_param": "per_page", "size": PAGE,
                           "total_pages_path": "meta.total_pages"},
            "columns": {"id": {"type": "integer"}, "updated_at": {"type": "datetime"},
                        "city": {"type": "string", "path": "address.city"}},
            "incremental": {"cursor_path": "updated_at", "param": "updated_since",
                            "initial_value": "2024-01-01T00:00:00Z", **incremental}}


def items_model(kind: str) -> dict:
    read = {"table": "items"} if kind == "table" else {"query": "SELECT id, name, updated_at FROM items WHERE id > 0"}
    return {**read, "primary_key": ["id"], "chunk_size": 7,
            "columns": {"id": {"type": "integer"}, "name": {"type": "string", "length": 20}},
            "incremental": {"column": "updated_at", "lag": "PT0S"}}


ITEMS = sa.Table("items", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("name", sa.String(20)), sa.Column("updated_at", sa.DateTime))


def source_db(path: Path) -> sa.Engine:
    """100 rows, three to a minute (chunks of 7 end inside runs of equal cursors)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    ITEMS.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(ITEMS.insert(), [{"id": i, "name": f"n{i}", "updated_at": BASE + timedelta(minutes=i // 3)}
                                            for i in range(1, 101)])
    return engine
