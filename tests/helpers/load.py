"""The model the loader tests load (every column type, `items` under a schema of the test's choice)
and its deterministic records, with values that are hard to round-trip."""
from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.config.models import ApiModel, ApiSource
from shared.config.project import ModelRef

REDACTION = "[REDACTED]"
COLUMNS = {
    "id": {"type": "integer"},
    "name": {"type": "string", "length": 40},
    "amount": {"type": "decimal", "precision": 12, "scale": 2},
    "score": {"type": "float"},
    "active": {"type": "boolean"},
    "born": {"type": "date"},
    "updated": {"type": "datetime"},
    "tags": {"type": "json"},
    "note": {"type": "text"},
}


def model_ref(schema: str, columns: dict[str, Any] = COLUMNS, key: tuple[str, ...] = ("id",),
              name: str = "items") -> ModelRef:
    model = ApiModel(path="/items", primary_key=list(key), columns=columns)
    source = ApiSource(type="api", base_url="http://127.0.0.1:1", models={name: model})
    return ModelRef(schema, source, name, model, "off")



def record(i: int, version: int = 1) -> dict[str, Any]:
    rnd = random.Random(i * 1000 + version)
    return {
        "id": i,
        "name": f"item {i} v{version} " + rnd.choice(["plain", "O'Brien", 'say "hi"', "Zoë", "東京", "שלום", "🚀"]),
        "amount": Decimal(rnd.randint(-10**8, 10**8)) / 100,
        "score": rnd.randint(-10**6, 10**6) / 64,            # exact in binary and in 15 digits
        "active": rnd.random() < 0.5,
        "born": date(1950, 1, 1) + timedelta(days=rnd.randint(0, 25000)),
        "updated": datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rnd.randint(0, 10**8),
                                                                 microseconds=rnd.randint(0, 999999)),
        "tags": None if i % 7 == 0 else {"v": version, "list": [i, "x", None, True], "nested": {"ü": 1.5}},
        "note": None if i % 5 == 0 else f"note {i}\nline 2\ttab \\ backslash",
    }
