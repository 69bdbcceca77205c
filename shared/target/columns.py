"""What a manifest column becomes in the target table, once its PII rule has been applied.

A hashed column holds 64 hex characters whatever its declared type, a masked number holds text,
a dropped column does not exist at all: the table stores what the PII stripper outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.config.models import Column, ColumnType, PiiRule

DEFAULT_STRING_LENGTH = 255    # `string` without `length`: portable (MariaDB needs one); `text` for longer
DEFAULT_PRECISION, DEFAULT_SCALE = 38, 10   # `decimal` without precision: SQL Server's maximum
HASH_LENGTH = 64
RUN_ID, LOADED_AT = "_kspyder_run_id", "_kspyder_loaded_at"
DELETED_AT = "_kspyder_deleted_at"                        # deletes: soft
VALID_FROM, VALID_TO = "_kspyder_valid_from", "_kspyder_valid_to"   # history: scd2
CURRENT, ROW_HASH = "_kspyder_current", "_kspyder_row_hash"         # history: scd2
META_COLUMNS = (RUN_ID, LOADED_AT, DELETED_AT, VALID_FROM, VALID_TO, CURRENT, ROW_HASH)


@dataclass(frozen=True)
class StoredColumn:
    """The stored shape of one column: a logical type plus its size, comparable across dialects."""

    name: str
    type: ColumnType
    length: int | None = None       # string
    precision: int | None = None    # decimal
    scale: int | None = None        # decimal
    primary_key: bool = False

    def describe(self) -> str:
        if self.type == ColumnType.string:
            return f"STRING({self.length})"
        if self.type == ColumnType.decimal:
            return f"DECIMAL({self.precision},{self.scale})"
        return self.type.value.upper()


def stored_column(name: str, column: Column, redaction: str, primary_key: bool = False) -> StoredColumn | None:
    """None for a dropped column."""
    rule = column.pii.rule if column.pii else None
    if rule == PiiRule.drop:
        return None
    if rule == PiiRule.hash:
        return StoredColumn(name, ColumnType.string, HASH_LENGTH, primary_key=primary_key)
    if rule in (PiiRule.mask, PiiRule.redact) and column.type not in (ColumnType.string, ColumnType.text):
        return StoredColumn(name, ColumnType.string, max(HASH_LENGTH, len(redaction)), primary_key=primary_key)
    if column.type == ColumnType.string:
        length = column.length or DEFAULT_STRING_LENGTH
        if rule == PiiRule.redact:
            length = max(length, len(redaction))
        return StoredColumn(name, ColumnType.string, length, primary_key=primary_key)
    if column.type == ColumnType.decimal:
        return StoredColumn(name, ColumnType.decimal, precision=column.precision or DEFAULT_PRECISION,
                            scale=DEFAULT_SCALE if column.scale is None else column.scale, primary_key=primary_key)
    return StoredColumn(name, column.type, primary_key=primary_key)


def stored_columns(columns: dict[str, Column], primary_key: list[str], redaction: str) -> list[StoredColumn]:
    out = [stored_column(name, col, redaction, name in primary_key) for name, col in columns.items()]
    return [c for c in out if c is not None]
