"""Aggregation results as file contents: plain JSON and flat CSV.

Plain JSON, not MongoDB Extended JSON: the files are for people and tools that know nothing of
BSON, so datetimes are ISO 8601 text, decimals text (exact digits), ObjectIds their hex text.
CSV needs flat rows: nested fields become dotted column names (`properties.addressPrefix`), lists
are written as JSON text, and the header is the union of every document's keys in first-seen order.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId


def plain(value: Any) -> Any:
    """`json.dumps` default: the non-JSON types a document may hold."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, Decimal128, ObjectId)):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot write a {type(value).__name__} as JSON")


def json_bytes(documents: list[dict]) -> bytes:
    return (json.dumps(documents, default=plain, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def flatten(document: dict, prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}, "c": [1]}` -> `{"a.b": 1, "c": [1]}`; an empty sub-document stays a cell."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=plain, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date, Decimal, Decimal128, ObjectId, bytes)):
        return plain(value)
    return value


def csv_bytes(documents: list[dict]) -> bytes:
    rows = [flatten(doc) for doc in documents]
    header = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([_cell(row.get(name)) for name in header] for row in rows)
    return buffer.getvalue().encode("utf-8")
