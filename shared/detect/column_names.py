"""The PII guard on column names: a column whose name says it holds personal data must be covered
by something, or the manifest must say it is not PII (`pii: none` with a `reason`).

Covered means a `pii` rule, `pii_fields` on a json column, or the free-text scan when the scan can
see that kind of value at all: it finds e-mails, phones, IBANs, cards, IPs and national numbers in
text, but no personal name, street address, postcode or birth date, and it never reads a number
column, a key or a column whose scan is off. A second model or query over a PII column without a
rule would otherwise store it as it came. Plain attribute access, no manifest models: config calls this.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from shared.detect.names import name_suggests

# What `name_suggests` says, for the kinds the free-text scan finds in text (detectors.py)
SCANNED = frozenset({"an e-mail address", "a phone number", "a bank account", "a payment card", "an IP address",
                     "a national identifier"})
# Kinds the guard leaves alone: a secret is no one's personal data (the probe still proposes drop)
NOT_GUARDED = frozenset({"a secret"})
TEXT_TYPES = ("string", "text", "json")
# The types that can hold each kind: a boolean `email_opt_in` or a datetime `email_verified_at` cannot
DATE_TYPES = ("date", "datetime", "string", "text")
VALUE_TYPES = ("string", "text", "json", "integer", "bigint", "binary")
_CONTEXTS = {"a phone number": "phone", "a national identifier": "national_id"}
_WHAT = {"a personal name": "personal names", "a street address": "street addresses", "a postcode": "postcodes",
         "a birth date": "birth dates"}


class Unguarded(NamedTuple):
    column: str
    message: str


def _type(column: Any) -> str:
    return str(getattr(column.type, "value", column.type))   # a ColumnType, or its name


def suggested(column_name: str, column: Any) -> str | None:
    """What the column's name (or the last part of its path) suggests it holds, for its type; None: nothing."""
    names = [column_name]
    if column.path:
        last = [part for part in column.path.split(".") if not part.isdigit() and part != "*"]
        if last and last[-1] != column_name:
            names.append(last[-1])
    for name in names:
        found = name_suggests(name)
        if found is None or found[1] in NOT_GUARDED:
            continue
        types = DATE_TYPES if found[1] == "a birth date" else VALUE_TYPES
        if _type(column) in types:
            return found[1]
    return None


def scan_context(column_name: str, column: Any) -> str | None:
    """The context a column's name gives the free-text scan (scrub.CONTEXTS): "phone" for a
    phone column, "national_id" for a national identifier's; None for other columns."""
    return _CONTEXTS.get(suggested(column_name, column) or "")


def why_uncovered(what: str, column: Any, scan: str, key: bool) -> str | None:
    """Why nothing covers a column suggesting `what`, or None when something does. `scan` is the
    column's effective scan mode (its own, else its model's, else the settings')."""
    if column.pii is not None:   # a rule, or `pii: none` stated with a reason
        return None
    if column.pii_fields and _type(column) == "json":
        return None
    if key:
        return "keys are never scanned"
    if _type(column) not in TEXT_TYPES:
        return f"{_type(column)} columns are never scanned"
    if scan == "off":
        return "its pii_scan is off"
    if what not in SCANNED:
        return f"the free-text scan does not recognise {_WHAT.get(what, what)}"
    return None


def unguarded_columns(model: Any, default_scan: str) -> Iterator[Unguarded]:
    """The columns of `model` (a ModelBase) whose name suggests PII that nothing covers. Keys are
    left to the key check (validation.py), which asks for `pii: hash` on them."""
    model_scan = model.pii_scan or default_scan
    for name, column in model.columns.items():
        if name in model.primary_key:
            continue
        what = suggested(name, column)
        if what is None:
            continue
        why = why_uncovered(what, column, column.pii_scan or model_scan, False)
        if why is not None:
            yield Unguarded(name, f"column '{name}': the name suggests {what} and nothing covers it ({why}): "
                                  "give it a pii rule, or pii: none with a reason")
