"""Column rules (`pii:` and `pii_fields:` entries) compiled into small functions of one value.

Every rule keeps None as None: a missing value carries no PII, and turning it into a token or a
hash would invent data. Error messages name columns and paths, never values.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import lru_cache, partial
from typing import Any

from shared.config.models import PiiRule, PiiSpec
from shared.detect.digest import keyed_hash

Transform = Callable[[Any], Any]


class _Drop:
    """The marker returned instead of a transform: remove the column or nested key (callers test
    `is DROP`). A Transform by type, so rules compile to one type; it is never applied to values."""

    def __call__(self, value: Any) -> Any:
        raise TypeError("DROP removes a column or key: it is not applied to values")

    def __repr__(self) -> str:
        return "DROP"


DROP: Transform = _Drop()

_ISO_DATE_PREFIX = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class PiiKeyMissing(ValueError):
    """A hash rule with no key: refusing beats an unkeyed hash, which anyone can reverse by guessing."""

    def __init__(self, column: str):
        self.column = column
        super().__init__(f"column '{column}' needs a PII key for hashing: set KSPYDER_PII_KEY (settings pii.key)")


def canonical_text(value: Any) -> str:
    """The text a value is hashed or masked as; the same value must give the same text in every run."""
    if isinstance(value, str):
        return value
    if isinstance(value, (date, time)):   # datetime is a date
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=canonical_text)
    return str(value)


_BINARY = (bytes, bytearray, memoryview)   # what a binary column holds (extract/records.py)
HASH_CACHE = 65_536   # per hashed column: hashed keys and low-cardinality columns repeat a lot


def _hash(key: bytes) -> Transform:
    # Bounded and per column (per stripper, so per run): the same value hashes to the same digest
    # anyway, and an HMAC costs several times a dictionary lookup. Only digests and the values
    # already in this run's memory are held; nothing is written anywhere.
    cached = lru_cache(maxsize=HASH_CACHE)(partial(keyed_hash, key))

    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, _BINARY):   # a binary column: its bytes, not the text `b'...'` of them
            return cached(bytes(value))
        return cached(canonical_text(value))
    return apply


def _mask(keep: int) -> Transform:
    def apply(value: Any) -> Any:
        if value is None:
            return None
        text = canonical_text(value)
        hidden = max(len(text) - keep, 0)
        return "*" * hidden + text[hidden:]
    return apply


def _redact(token: str) -> Transform:
    def apply(value: Any) -> Any:
        return None if value is None else token
    return apply


def _month(token: str) -> Transform:
    def apply(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime):
            return datetime(value.year, value.month, 1, tzinfo=UTC)
        if isinstance(value, date):
            return date(value.year, value.month, 1)
        if isinstance(value, str):
            match = _ISO_DATE_PREFIX.match(value)
            if match:
                try:
                    date(int(match[1]), int(match[2]), int(match[3]))
                except ValueError:
                    return token
                return f"{match[1]}-{match[2]}"
        return token
    return apply


def _postcode(keep: int) -> Transform:
    def apply(value: Any) -> Any:
        if value is None:
            return None
        return "".join(canonical_text(value).split())[:keep].upper()
    return apply


def compile_rule(spec: PiiSpec, *, key: bytes | None, redaction: str, where: str) -> Transform:
    """The transform for one rule, or DROP; `where` names the column (or column.path) for errors."""
    rule = spec.rule
    if rule == PiiRule.drop:
        return DROP
    if rule == PiiRule.hash:
        if not key:
            raise PiiKeyMissing(where)
        return _hash(key)
    if rule == PiiRule.mask:
        return _mask(4 if spec.keep is None else spec.keep)
    if rule == PiiRule.redact:
        return _redact(redaction)
    if spec.kind == "date":
        return _month(redaction)
    if spec.kind == "postcode":
        return _postcode(3 if spec.keep is None else spec.keep)
    raise ValueError(f"column '{where}': pii rule {rule.value} needs kind date or postcode")
