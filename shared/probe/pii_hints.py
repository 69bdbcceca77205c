"""PII rule proposals, from column names and from what `find_pii` sees in the values.

The proposals are hints for a human to confirm, so each carries its reason as a comment; the
reasons name kinds and shares, never a value. A column whose values *are* PII gets a column rule;
free text that merely *contains* PII is left to the model's `pii_scan`.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.detect.detectors import find_pii
from shared.detect.names import DROP, GENERALIZE_DATE, HASH, MASK_PHONE, Spec, name_suggests

HASH_LENGTH = 64     # hex characters of the keyed HMAC-SHA256
MOSTLY = 0.5          # share of values that must be one PII value for a column rule
TEXT_TYPES = ("string", "text", "json")
NAME_TYPES = ("string", "text", "json", "integer", "bigint")
DATE_RULE_TYPES = ("date", "datetime", "string", "text")

# find_pii kinds: the family a value belongs to, the rule for a column of them, and how to say it
VALUE_RULES: dict[str, tuple[str, Spec, str]] = {
    "email": ("email", HASH, "e-mail addresses"),
    "phone": ("phone", MASK_PHONE, "phone numbers"),
    "iban": ("iban", DROP, "IBANs"),
    "card": ("card", DROP, "payment card numbers"),
    "ipv4": ("ip", DROP, "IP addresses"),
    "ipv6": ("ip", DROP, "IP addresses"),
}


@dataclass(frozen=True)
class PiiHint:
    column: str
    rule: Spec
    reason: str               # the comment, without the leading "PII? "


@dataclass(frozen=True)
class FreeTextPii:
    column: str
    kinds: tuple[str, ...]    # find_pii kinds found inside some values
    share: float              # of the non-empty values


def name_hint(name: str, column_type: str) -> PiiHint | None:
    """The first rule whose pattern the name matches, if that rule suits the column's type: an
    `email_verified_at` datetime or a `birth_year` integer match a pattern but no rule fits them."""
    found = name_suggests(name)
    if found is None:
        return None
    rule, what = found
    return PiiHint(name, rule, f"the name suggests {what}") if _rule_fits(rule, column_type) else None


def _rule_fits(rule: Spec, column_type: str) -> bool:
    return column_type in (DATE_RULE_TYPES if rule == GENERALIZE_DATE else NAME_TYPES)


def value_hint(name: str, values: Iterable[Any]) -> PiiHint | FreeTextPii | None:
    """A rule when most values are one PII value; a free-text finding when some merely contain PII."""
    texts = [_text(v) for v in values if v is not None]
    texts = [t for t in texts if t.strip()]
    if not texts:
        return None
    whole: dict[str, int] = {}
    inside: dict[str, int] = {}
    containing = 0
    for text in texts:
        found = find_pii(text)
        if found:
            containing += 1
        for detection in found:
            inside[detection.kind] = inside.get(detection.kind, 0) + 1
        family = _whole_value_family(text, found)
        if family:
            whole[family] = whole.get(family, 0) + 1
    if whole:
        family, count = max(whole.items(), key=lambda item: item[1])
        if count / len(texts) > MOSTLY:
            _, rule, what = next(r for r in VALUE_RULES.values() if r[0] == family)
            return PiiHint(name, rule, f"{what} in {_percent(count / len(texts))} of values")
    if containing:
        return FreeTextPii(name, tuple(sorted(inside)), containing / len(texts))
    return None


def _whole_value_family(text: str, found: list) -> str | None:
    stripped = text.strip()
    offset = len(text) - len(text.lstrip())
    for detection in found:
        if detection.start == offset and detection.end == offset + len(stripped) and detection.kind in VALUE_RULES:
            return VALUE_RULES[detection.kind][0]
    return None


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value if isinstance(value, str) else ""


def _percent(share: float) -> str:
    return f"{round(share * 100)}%"


def column_hint(name: str, column_type: str, values: list[Any]) -> PiiHint | FreeTextPii | None:
    """Values speak louder than names: an `email` column full of phone numbers gets the phone rule.
    Only text-like columns are scanned; numbers and dates carry no PII find_pii could see."""
    by_value = value_hint(name, values) if column_type in TEXT_TYPES else None
    if isinstance(by_value, PiiHint):
        return by_value
    return name_hint(name, column_type) or by_value


def typed_for_rule(rule: Spec, column_type: str, length: int | None) -> tuple[str, int | None]:
    """The column type and length a rule's output needs: hash and mask write text, even where the
    source sent numbers, and a keyed hash is 64 hex characters whatever the input length."""
    name = rule if isinstance(rule, str) else rule["rule"]
    writes_text = name in ("hash", "mask") or (isinstance(rule, dict) and rule.get("kind") == "postcode")
    if not writes_text or column_type in ("text", "json"):
        return column_type, length
    if column_type != "string":
        return "string", 100 if name == "hash" else 50
    if name == "hash" and length is not None and length < HASH_LENGTH:
        return "string", 100
    return column_type, length


def describe_kinds(kinds: Iterable[str]) -> str:
    names = {"email": "e-mail", "phone": "phone", "iban": "IBAN", "card": "card", "ipv4": "IP", "ipv6": "IP",
             "term": "term"}
    return ", ".join(dict.fromkeys(names.get(k, k) for k in kinds))
