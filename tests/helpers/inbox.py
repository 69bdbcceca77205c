"""A blob-drop source to ingest: two models over a placeholder API and customer records that carry
PII, shared by the ingestion tests and the blob-drop function's."""
from __future__ import annotations

SECRET_EMAIL = "ada.secret@example.com"
SECRET_NAME = "Ada Lovelace"


def models() -> dict:
    return {
        "customers": {"path": "/v1/customers", "records": "data.items", "primary_key": ["id"],
                      "columns": {"id": {"type": "integer"},
                                  "name": {"path": "full_name", "type": "string", "pii": "hash"},
                                  "email": {"type": "string", "pii": "drop"},
                                  "city": {"path": "address.city", "type": "string", "length": 100},
                                  "balance": {"type": "decimal", "precision": 12, "scale": 2},
                                  "active": {"type": "boolean"},
                                  "created_at": {"path": "created", "type": "datetime"},
                                  "tags": {"type": "json"}}},
        "countries": {"path": "/v1/countries", "columns": {"code": {"type": "string"}, "name": {"type": "string"}}},
    }


def customer(i: int, **extra) -> dict:
    return {"id": i, "full_name": SECRET_NAME, "email": SECRET_EMAIL, "address": {"city": f"City {i}"},
            "balance": "10.50", "active": True, "created": "2024-05-01T12:00:00+02:00", "tags": ["a"], **extra}
