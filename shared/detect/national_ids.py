"""National identifiers (social security and tax numbers) in columns whose name says they hold one.

Each is checked by python-stdnum's validator for its format and check digits: US SSN (format
rules: no area 000/666/9xx, no group 00, no serial 0000), FR NIR (mod-97 key), DE IdNr (ISO 7064
check digit), ES DNI/NIE (check letter), IT codice fiscale (check character), NL BSN (11-test),
UK UTR (check digit) and NHS number (mod-11); the UK National Insurance number, which stdnum
lacks, by HMRC's prefix and suffix rules. A 9-digit run passes the BSN test one time in eleven,
so like a bare phone number this runs only where the column's name is the context (detectors.py).
Imported on first use: the scan process never loads stdnum unless it meets such a column.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from importlib import import_module

Span = tuple[int, int, str]
_VALIDATORS = ("us.ssn", "fr.nir", "de.idnr", "es.dni", "es.nie", "it.codicefiscale", "nl.bsn", "gb.utr", "gb.nhs")
# Groups of letters and digits joined by one space, dot or dash: the ways these numbers are written
_GROUPS = re.compile(r"[A-Za-z0-9]+(?:[ .\-][A-Za-z0-9]+)*")
_PIECE = re.compile(r"[A-Za-z0-9]+")
_NINO = re.compile(r"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]")
_WIDEST = 7   # groups: "2 95 10 99 126 111 93" is the most a NIR is split into


@lru_cache(maxsize=1)
def _checks() -> tuple[Callable[[str], bool], ...]:
    return tuple(import_module(f"stdnum.{name}").is_valid for name in _VALIDATORS)


def is_national_id(compact: str) -> bool:
    """True when `compact` (letters and digits only) is a valid identifier of one of the kinds above."""
    if not any(char.isdigit() for char in compact) or len(compact) < 8:
        return False
    if _NINO.fullmatch(compact.upper()) is not None:
        return True
    return any(check(compact) for check in _checks())


def find_national_ids(text: str) -> list[Span]:
    """Spans of the valid identifiers in `text`: within each run of groups, the longest valid
    range of consecutive groups from each group that holds a digit or opens a NINO."""
    found: list[Span] = []
    for run in _GROUPS.finditer(text):
        pieces = [(m.start(), m.end()) for m in _PIECE.finditer(text, run.start(), run.end())]
        i = 0
        while i < len(pieces):
            taken = -1
            for j in range(min(len(pieces), i + _WIDEST) - 1, i - 1, -1):
                compact = "".join(text[s:e] for s, e in pieces[i:j + 1])
                if is_national_id(compact):
                    taken = j
                    break
            if taken >= 0:
                found.append((pieces[i][0], pieces[taken][1], "national_id"))
                i = taken + 1
            else:
                i += 1
    return found
