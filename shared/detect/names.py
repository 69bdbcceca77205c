"""Column names that suggest PII: what the probe proposes rules from, and what validation uses to
tell a key column that must be hashed (keys are never free-text scanned, so a key that holds PII
would otherwise be stored as it came). Plain patterns, no manifest models: config imports this."""
from __future__ import annotations

import re

Spec = str | dict
HASH, DROP = "hash", "drop"
MASK_PHONE: Spec = {"rule": "mask", "keep": 3}
GENERALIZE_POSTCODE: Spec = {"rule": "generalize", "kind": "postcode", "keep": 3}
GENERALIZE_DATE: Spec = {"rule": "generalize", "kind": "date"}

# (pattern over the snake_case column name, rule, what the name suggests), first match wins
NAME_RULES: tuple[tuple[re.Pattern[str], Spec, str], ...] = tuple((re.compile(p), spec, what) for p, spec, what in (
    (r"(^|_)(password|passwd|pwd|secret|token|api_?key|private_key|client_secret)(_|$)", DROP, "a secret"),
    (r"email|(^|_)e?mail(_|$)", HASH, "an e-mail address"),
    (r"(^|_)(iban|account_?(number|no|num)|bank_account|acct_?(number|no))(_|$)", DROP, "a bank account"),
    (r"(^|_)(card|pan)$|card_?(number|num|no)|credit_card|(^|_)cc_?(number|num)", DROP, "a payment card"),
    (r"(^|_)(ssn|national_id|national_insurance|social_security|tax_id|passport|nino)(_|$)", DROP,
     "a national identifier"),
    (r"birth|(^|_)dob(_|$)", GENERALIZE_DATE, "a birth date"),
    (r"phone|mobile|(^|_)(tel|telephone|fax|cell|msisdn)(_|$)", MASK_PHONE, "a phone number"),
    (r"(first|last|full|given|family|middle|maiden|user|display)_?name|surname", HASH, "a personal name"),
    (r"post_?code|postal|(^|_)zip(_?code)?(_|$)", GENERALIZE_POSTCODE, "a postcode"),
    (r"(^|_)(ip|ip_?addr(ess)?|ipv4|ipv6|remote_addr)(_|$)", DROP, "an IP address"),
    (r"street|(^|_)(address|addr)(_?line)?_?\d?$|(^|_)line_?[12]$", DROP, "a street address"),
))


_CAMEL = re.compile(r"([a-z0-9])([A-Z])|([A-Z]+)([A-Z][a-z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def snake(name: str) -> str:
    """The snake_case form the patterns read: `CustomerEmail`, `customer-email` -> `customer_email`."""
    spaced = _CAMEL.sub(lambda m: f"{m[1]}_{m[2]}" if m[1] else f"{m[3]}_{m[4]}", name)
    return _NOT_WORD.sub("_", spaced.lower()).strip("_")


def name_suggests(name: str) -> tuple[Spec, str] | None:
    """(rule, what the name suggests) of the first pattern `name` (as snake_case) matches, or None."""
    name = snake(name)
    for pattern, rule, what in NAME_RULES:
        if pattern.search(name):
            return rule, what
    return None


def key_name_suggests_pii(name: str) -> str | None:
    """What a key column's name suggests when it names a person's data (a birth date or a postcode
    generalised is no key anyway, so those are left out): None when it suggests nothing."""
    found = name_suggests(name)
    if found is None or found[0] in (GENERALIZE_DATE, GENERALIZE_POSTCODE):
        return None
    return found[1]
