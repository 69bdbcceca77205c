"""Column types guessed from the records seen, and a primary key guess.

Guesses lean towards types that will not reject the next page: a column only becomes `date`,
`decimal` or `integer` when every value seen fits, and mixed values fall back to text.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.probe.naming import identifier, singular, unique

INT32 = (-2**31, 2**31 - 1)
STRING_BUCKETS = (50, 100, 255)
_DECIMAL = re.compile(r"-?\d+\.(\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?")
ONLY_NULLS = "only nulls seen"


@dataclass(frozen=True)
class TypeGuess:
    type: str
    length: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class ColumnGuess:
    name: str
    keys: tuple[str, ...]        # the original keys from record to value (one or two)
    type: str
    length: int | None = None
    note: str | None = None

    @property
    def path(self) -> str | None:
        """The manifest's `path`, needed only when the name is not the key itself."""
        dotted = ".".join(self.keys)
        return None if dotted == self.name else dotted

    def values(self, records: Iterable[Any]) -> list[Any]:
        """The values of this column in `records`, None where absent; kept out of the dataclass so
        that no repr or report can ever show one."""
        out = []
        for record in records:
            node = record
            for key in self.keys:
                node = node.get(key) if isinstance(node, dict) else None
            out.append(node)
        return out


def infer_columns(records: list[dict]) -> tuple[list[ColumnGuess], list[str]]:
    """Columns in first-seen key order, nested objects flattened one level; also the keys skipped
    because they contain a dot, which a column `path` cannot address."""
    columns: list[ColumnGuess] = []
    skipped: list[str] = []
    taken: set[str] = set()
    for key in _keys(records):
        if "." in key:
            skipped.append(key)
            continue
        values = [r.get(key) for r in records if isinstance(r, dict)]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, dict) for v in present):
            for child in _keys(present):
                if "." in child:
                    skipped.append(f"{key}.{child}")
                    continue
                name = unique(f"{identifier(key)}_{identifier(child)}", taken)
                columns.append(_column(name, (key, child), [v.get(child) for v in present]))
        else:
            columns.append(_column(unique(identifier(key), taken), (key,), values))
    return columns, skipped


def _keys(records: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(k for r in records if isinstance(r, dict) for k in r))


def _column(name: str, keys: tuple[str, ...], values: list[Any]) -> ColumnGuess:
    guess = infer_type(values)
    return ColumnGuess(name, keys, guess.type, guess.length, guess.note)


def infer_type(values: Iterable[Any]) -> TypeGuess:
    present = [v for v in values if v is not None]
    if not present:
        return TypeGuess("string", note=ONLY_NULLS)
    if any(isinstance(v, (dict, list)) for v in present):
        return TypeGuess("json")
    if all(isinstance(v, bool) for v in present):
        return TypeGuess("boolean")
    if any(isinstance(v, bool) for v in present):
        return _text(present)
    if all(isinstance(v, int) for v in present):
        small = all(INT32[0] <= v <= INT32[1] for v in present)
        return TypeGuess("integer" if small else "bigint")
    if all(isinstance(v, (int, float)) for v in present):
        return TypeGuess("float")
    if all(isinstance(v, str) for v in present):
        return _string_type(present)
    return _text(present)


def _string_type(values: list[str]) -> TypeGuess:
    if _fixed_decimals(values):
        return TypeGuess("decimal")
    if all(_DATE.fullmatch(v) and _parses(date.fromisoformat, v) for v in values):
        return TypeGuess("date")
    if all((_DATETIME.fullmatch(v) or _DATE.fullmatch(v)) and _parses(datetime.fromisoformat, v) for v in values):
        return TypeGuess("datetime")
    return _text(values)


def _fixed_decimals(values: list[str]) -> bool:
    """"1234.56" everywhere with the same number of decimals is money, not a float that happens to be quoted."""
    scales = set()
    for value in values:
        match = _DECIMAL.fullmatch(value)
        if not match:
            return False
        scales.add(len(match.group(1)))
    return len(scales) == 1


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _text(values: list[Any]) -> TypeGuess:
    texts = [v if isinstance(v, str) else str(v) for v in values]
    longest = max(len(t) for t in texts)
    if longest > STRING_BUCKETS[-1] or any("\n" in t or "\r" in t for t in texts):
        return TypeGuess("text")
    return TypeGuess("string", length=next(b for b in STRING_BUCKETS if longest <= b))


# ---------------------------------------------------------------- primary key
def primary_key(columns: list[ColumnGuess], records: list[dict], model: str) -> str | None:
    """The first conventional key name that is non-null and unique over the records seen."""
    by_name = {c.name: c for c in columns if c.type not in ("json", "float")}
    names = ["id", f"{model}_id", f"{singular(model)}_id", "uuid", "key", "code", "sku"]
    if columns and columns[0].name.endswith("_id") and len(columns[0].keys) == 1:
        names.append(columns[0].name)
    for name in dict.fromkeys(names):
        column = by_name.get(name)
        if column is not None and _unique_non_null(column.values(records)):
            return name
    return None


def _unique_non_null(values: list[Any]) -> bool:
    if not values or any(v is None for v in values):
        return False
    return len({repr(v) for v in values}) == len(values)
