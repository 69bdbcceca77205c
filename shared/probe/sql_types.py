"""A database column's type, as SQLAlchemy's inspector reports it, mapped to a manifest column type.

The mapping keeps what the source guarantees (`numeric(12,2)` stays `decimal(12,2)`, `varchar(40)`
stays `string(40)`, an enum becomes a string as long as its longest label) and says, in a note
that becomes the column's comment, whatever the draft's reader should know. A type kspyder has no
column for (an interval, a geometry) gives None and a reason: the column is left out, and says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from shared.config.models import Column
from shared.target.columns import DEFAULT_STRING_LENGTH

MAX_LENGTH = Column.model_fields["length"].metadata[-1].le   # a `string` longer than this is `text`
MAX_PRECISION = Column.model_fields["precision"].metadata[-1].le
TIME_LENGTH = 32          # `12:30:00.123456+05:30` as text
UUID_LENGTH = 36
NETWORK_LENGTH = 43       # an IPv6 CIDR with its prefix


@dataclass(frozen=True)
class TypeDraft:
    type: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class Unsupported:
    reason: str


def type_name(column_type: sa.types.TypeEngine) -> str:
    """The type as the database spells it, for notes: `NUMERIC(12, 2)`, `mood` (an enum's name)."""
    name = getattr(column_type, "name", None)
    if isinstance(column_type, sa.Enum) and name:
        return str(name)
    try:
        return str(column_type)
    except Exception:   # a type without a generic rendering (some dialect types)
        return type(column_type).__name__.upper()


def map_type(column_type: sa.types.TypeEngine, dialect: str) -> TypeDraft | Unsupported:
    t = column_type
    name = type(t).__name__.upper()
    if isinstance(t, sa.Enum):
        labels = [str(e) for e in (t.enums or [])]
        length = max(map(len, labels), default=0) or DEFAULT_STRING_LENGTH
        return TypeDraft("string", length, note=f"enum {type_name(t)} ({len(labels)} labels)")
    if isinstance(t, sa.ARRAY):
        return TypeDraft("json", note=f"array {type_name(t)}: a JSON list")
    if isinstance(t, sa.JSON):
        return TypeDraft("json")
    if isinstance(t, sa.Boolean) or (dialect in ("mysql", "mariadb") and name == "TINYINT"
                                     and getattr(t, "display_width", None) == 1):
        return TypeDraft("boolean")
    if isinstance(t, sa.types._Binary):
        return TypeDraft("binary", note=f"{type_name(t)}: bytes")
    if isinstance(t, sa.Integer):
        return _integer(t, name)
    if isinstance(t, sa.Float) or name in ("DOUBLE", "DOUBLE_PRECISION", "REAL", "FLOAT"):
        return TypeDraft("float")
    if isinstance(t, sa.Numeric):
        return _decimal(t)
    if isinstance(t, sa.DateTime):
        aware = getattr(t, "timezone", False)
        return TypeDraft("datetime", note=None if aware else "without time zone: taken as UTC")
    if isinstance(t, sa.Date):
        return TypeDraft("date")
    if isinstance(t, sa.Time):
        return TypeDraft("string", TIME_LENGTH, note="time of day, as ISO 8601 text")
    if isinstance(t, sa.Uuid) or name == "UUID":
        return TypeDraft("string", UUID_LENGTH, note="uuid")
    if name in ("INET", "CIDR", "MACADDR", "MACADDR8"):
        return TypeDraft("string", NETWORK_LENGTH, note=name.lower())
    if isinstance(t, sa.Interval):
        return Unsupported(f"{type_name(t)} has no column type")
    if isinstance(t, sa.String):
        return _text(t)
    if isinstance(t, sa.types.NullType):
        return TypeDraft("text", note="no declared type: read as text")
    return Unsupported(f"{type_name(t)} has no column type")


def _integer(t: sa.Integer, name: str) -> TypeDraft:
    unsigned = bool(getattr(t, "unsigned", False))
    if isinstance(t, sa.BigInteger) or name == "BIGINT":
        if unsigned:   # up to 2**64 - 1: past a signed 64-bit integer
            return TypeDraft("decimal", precision=20, scale=0, note="bigint unsigned")
        return TypeDraft("bigint")
    if unsigned and name in ("INTEGER", "INT", "MEDIUMINT"):
        return TypeDraft("bigint", note="unsigned: past a 32-bit integer")
    return TypeDraft("integer")


def _decimal(t: sa.Numeric) -> TypeDraft:
    precision, scale = t.precision, t.scale
    if precision is None:
        return TypeDraft("decimal", note="numeric without precision: 38 digits, 10 after the point; check them")
    if precision > MAX_PRECISION:
        return TypeDraft("decimal", precision=MAX_PRECISION, scale=min(scale or 0, MAX_PRECISION),
                         note=f"{type_name(t)}: more digits than a target keeps; values past 38 digits fail")
    return TypeDraft("decimal", precision=precision, scale=scale or 0)


def _text(t: sa.String) -> TypeDraft:
    length = getattr(t, "length", None)
    if isinstance(t, sa.Text) or not length:
        return TypeDraft("text")
    if length > MAX_LENGTH:
        return TypeDraft("text", note=f"{type_name(t)}: longer than a string column")
    return TypeDraft("string", length)
