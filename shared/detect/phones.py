"""Phone numbers written as bare digit runs (`6172235589`, `14033335568`), in columns whose name
says they hold phones.

In free text such a run is as likely an order number or an amount in cents, so the general
detectors (numeric.py) only take digits shaped like a phone: a "+", a trunk 0, a North American
layout. A column named `phone` or `fax` is context enough: there a run of digits (with the usual
separators) is a phone when libphonenumber finds it a possible number, written internationally or
in one of the common regions. Dates keep their shape and stay. The library is imported on the
first candidate, so a scan that never meets a phone column (the scan process) never loads it.
"""
from __future__ import annotations

import re

from shared.detect.numeric import _DATE_CHUNK

Span = tuple[int, int, str]
# A run of digits with spaces, dots, dashes and parentheses between them, optionally opening with
# "+"; not glued to a word, a decimal, a time or a path on either side.
_CANDIDATE = re.compile(r"(?<![\w.,:/+\-])\+?(?:\(\d{1,5}\)|\d)(?:[ .\-]?(?:\(\d{1,5}\)|\d))*(?![\w]|[.,:/\-]\d)")
_NOT_DIGIT = re.compile(r"\D")
# Regions tried for a number written without its country code, by how often they appear in data
_REGIONS = ("US", "GB", "DE", "FR", "IN", "CN", "BR", "JP", "RU", "ES", "IT", "NL", "AU", "MX", "ZA")


def possible_phone(candidate: str) -> bool:
    """libphonenumber's possible-number check, international first, then the common regions."""
    import phonenumbers  # here: see the module's docstring
    from phonenumbers import NumberParseException

    digits = _NOT_DIGIT.sub("", candidate)
    if not 7 <= len(digits) <= 15:   # E.164: at most 15 digits; fewer than 7 is an extension
        return False
    international = candidate.startswith("+") or digits.startswith("00")
    tries: list[tuple[str, str | None]] = [("+" + digits.removeprefix("00"), None) if international
                                           else ("+" + digits, None)]
    if not international:
        tries += [(digits, region) for region in _REGIONS]
    for text, region in tries:
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(text, region)):
                return True
        except NumberParseException:
            continue
    return False


def find_phone_runs(text: str) -> list[Span]:
    """Spans of the digit runs in `text` that are possible phone numbers (dates left alone)."""
    found: list[Span] = []
    for match in _CANDIDATE.finditer(text):
        run = match.group()
        if _DATE_CHUNK.fullmatch(run) is not None or not possible_phone(run):
            continue
        found.append((match.start(), match.end(), "phone"))
    return found
