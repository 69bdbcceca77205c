"""Free-text PII detectors. Precision matters as much as recall: a scan that redacts dates, amounts
or order numbers ruins the data it protects. Every number-shaped kind is therefore validated
(checksums, lengths, octets) rather than matched on shape alone.

Speed matters too: the scan runs on every free-text value of every record, and most values hold
no PII but plenty of digits. So no detector walks the whole text by itself. E-mails are matched
only around an "@"; IPv6 addresses only from the first ":x:" pair; the digit-based kinds only
where `hints` (a few C-speed searches over a class map of the text) says they could match, which
in most text is nowhere. Candidates stay plain tuples until `resolve` has chosen among them.
"""
from __future__ import annotations

import ipaddress
import re
import string
from bisect import bisect_right
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from shared.detect.hints import hints
from shared.detect.numeric import find_numeric

# Ties between equally long overlapping spans go to the kind whose match is checked hardest.
_RANK = {"email": 0, "iban": 1, "card": 2, "national_id": 3, "ipv6": 4, "ipv4": 5, "phone": 6, "term": 7}

_EMAIL = re.compile(r"(?<![\w.%+\-])[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[^\W\d_]{2,}(?![\w\-])")
_LOCAL_PART = re.compile(r"[\w.%+\-]*")   # matched on the mirrored text, leftwards from an "@"
# The patterns below open with a plain character class (or a literal) rather than a lookbehind, so
# the regex engine skips in C to the characters a match can start with; the lookbehinds then test
# what precedes that first character (`.`). Same matches as the lookbehind-first spelling.
_IPV4 = re.compile(r"\d(?<![\w.].)\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![\w:.].)"
    r"(?:(?<=:)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){1,6}|(?<!:)[0-9A-Fa-f]{0,3}(?::[0-9A-Fa-f]{0,4}){2,7})"
    r"(?:\.\d{1,3}\.\d{1,3}\.\d{1,3})?(?![\w:]|\.\d)"
)
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")   # the first two colons of any IPv6 address
# Uppercase only: the electronic and the printed form of an IBAN are both uppercase.
_IBAN = re.compile(r"[A-Z](?<!\w.)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?!\w)")


class Detection(NamedTuple):
    """A NamedTuple rather than a dataclass: the scan process imports this module, and
    `dataclasses` would bring `inspect` and `ast` into it (see scan_process.py)."""
    start: int
    end: int
    kind: str


# IBAN length per country (SWIFT IBAN registry). A known country must have exactly its length, which
# stops a greedy match from taking the next word whenever mod-97 happens to pass (1 time in 97).
_IBAN_LENGTHS = dict(zip(
    "AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR GB GE GI GL GR GT HR "
    "HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MN MR MT MU NI NL NO OM PK PL PS PT QA RO "
    "RS RU SA SC SD SE SI SK SM SO ST SV TL TN TR UA VA VG XK YE".split(),
    (24, 23, 28, 20, 28, 20, 16, 22, 22, 27, 29, 28, 21, 22, 28, 24, 22, 27, 18, 28, 20, 29, 24, 18, 18, 18,
     27, 22, 22, 23, 18, 27, 28, 21, 28, 22, 23, 23, 26, 27, 30, 30, 20, 28, 32, 21, 20, 20, 21, 25, 27, 24,
     22, 19, 20, 27, 31, 30, 28, 18, 15, 23, 24, 28, 29, 25, 29, 24, 22, 33, 24, 31, 18, 24, 19, 24, 27, 23,
     25, 28, 23, 24, 26, 29, 22, 24, 20, 30), strict=True))


# A letter counts as its base-36 value (A=10 ... Z=35), as `int(char, 36)` reads it; digits stay
# (`int` reads any Unicode digit). One translate instead of a conversion per character.
_LETTER_VALUES = str.maketrans({letter: str(value) for letters in (string.ascii_uppercase, string.ascii_lowercase)
                                for value, letter in enumerate(letters, 10)})
_COUNTRY_DIGITS = {country: country.translate(_LETTER_VALUES) for country in _IBAN_LENGTHS}


def iban_ok(compact: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN without spaces (anything but letters and digits fails)."""
    if (len(compact) != _IBAN_LENGTHS.get(compact[:2], len(compact)) or not 15 <= len(compact) <= 34
            or not compact.isalnum()):
        return False
    country = _COUNTRY_DIGITS.get(compact[:2])
    if country is not None and compact[2:].isdecimal():   # the usual case: only the country has letters
        return int(compact[4:] + country + compact[2:4]) % 97 == 1
    return int((compact[4:] + compact[:4]).translate(_LETTER_VALUES)) % 97 == 1


Span = tuple[int, int, str]   # (start, end, kind): candidates stay plain tuples until `resolve` has chosen


def _emails(text: str, found: list[Span]) -> None:
    """Each e-mail holds exactly one "@" and, by the lookbehind, starts where the run of local-part
    characters before that "@" starts; so match once per "@" at that start instead of trying every
    position. The run is measured on the mirrored text, in C. (Where "@" is everywhere, as in
    "@@@@" art, one plain scan is cheaper than a Python step per "@".)"""
    if text.count("@") * 16 > len(text):
        found += [(match.start(), match.end(), "email") for match in _EMAIL.finditer(text)]
        return
    mirror, size, done = text[::-1], len(text), 0
    at = text.find("@")
    while at != -1:
        local = _LOCAL_PART.match(mirror, size - at)   # a `*` run: it matches, if only the empty run
        start = at - (local.end() - (size - at) if local else 0)
        # A start inside the previous match cannot be tried by a left-to-right scan either.
        if done <= start < at:
            match = _EMAIL.match(text, start)
            if match is not None:
                done = match.end()
                found.append((start, done, "email"))
        at = text.find("@", at + 1)


def _ibans(text: str, found: list[Span], heads: list[int]) -> list[tuple[int, int]]:
    """Append valid IBANs; return every IBAN-shaped span, valid or not, for the numeric detectors to
    avoid. `heads` holds every position an IBAN can start at, so matching there, left to right,
    finds what searching the whole text finds."""
    zones: list[tuple[int, int]] = []
    resume = 0
    for start in heads:
        if start < resume:
            continue
        match = _IBAN.match(text, start)
        if match is None:
            continue
        pieces = match.group().split(" ")
        zone_end = match.end()
        resume = start + 1
        # Greedy matching may take the next word (or the next IBAN's head) as a group: retry without it.
        for count in range(len(pieces), 0, -1):
            compact = "".join(pieces[:count])
            if iban_ok(compact):
                zone_end = resume = start + len(" ".join(pieces[:count]))
                found.append((start, zone_end, "iban"))
                break
        zones.append((start, zone_end))
    return zones


def _ipv4s(text: str, found: list[Span], start: int) -> None:
    for match in _IPV4.finditer(text, start):
        if all(int(octet) <= 255 for octet in match.group().split(".")):
            found.append((match.start(), match.end(), "ipv4"))


def _ipv6s(text: str, found: list[Span]) -> None:
    # An address's first colon is at most 4 characters in, and the hint finds it (or an earlier pair).
    hint = _IPV6_HINT.search(text)
    if hint is None:
        return
    for match in _IPV6.finditer(text, max(hint.start() - 4, 0)):
        candidate = match.group()
        if not candidate.strip(":"):   # a bare "::" is punctuation far more often than an address
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        found.append((match.start(), match.end(), "ipv6"))


def compile_terms(terms: Sequence[str]) -> re.Pattern[str] | None:
    """One alternation, longest first, so "Jane Doe" wins over "Jane"; None when there is nothing to find."""
    cleaned = sorted({t.strip() for t in terms if t and t.strip()}, key=lambda t: (-len(t), t))
    if not cleaned:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, cleaned)) + r")(?!\w)", re.IGNORECASE)


def _sort_key(span: Span) -> tuple[int, int]:
    return span[1], span[0]


def resolve(found: list[Span]) -> list[Span]:
    """Non-overlapping spans covering the most text, sorted by position. Between two overlapping
    spans the longer wins, and at equal length the more specific kind; choosing the best set rather
    than greedily keeps a false candidate straddling two real values from hiding both."""
    if len(found) <= 1:
        return found
    found.sort(key=_sort_key)
    ends = [span[1] for span in found]
    best = [0] * (len(found) + 1)       # best[i]: score of the best choice among the first i spans
    for i, (start, end, kind) in enumerate(found, 1):
        previous = bisect_right(ends, start, 0, i - 1)
        score = best[previous] + (end - start) * 8 + 7 - _RANK[kind]
        best[i] = max(best[i - 1], score)
    chosen: list[Span] = []
    i = len(found)
    while i > 0:
        if best[i] == best[i - 1]:
            i -= 1
        else:
            chosen.append(found[i - 1])
            i = bisect_right(ends, found[i - 1][0], 0, i - 1)
    chosen.reverse()
    return chosen


class Scanner:
    """All detectors with one model's terms compiled once; `find` is called for every text value."""

    __slots__ = ("_terms", "_column")

    def __init__(self, terms: Sequence[str] = (), column: str | None = None):
        """`column`: what the column's name says it holds ("phone", "national_id"), for the
        detectors that need that context (a bare digit run is a phone only in a phone column)."""
        self._terms = compile_terms(terms)
        self._column = column

    def spans(self, text: str) -> list[Span]:
        """What `find` returns, as plain (start, end, kind) tuples: the scrubbers' hot path."""
        terms = self._terms
        found: list[Span] = []
        if "@" in text:
            _emails(text, found)
        if ":" in text:
            _ipv6s(text, found)
        plan = hints(text)
        if plan is not None:
            heads, ipv4_from, windows = plan
            zones = _ibans(text, found, heads) if heads else []
            for start, end in windows:
                found += find_numeric(text, zones, start, end)
            if ipv4_from >= 0:
                _ipv4s(text, found, ipv4_from)
        if terms is not None:
            found += [(m.start(), m.end(), "term") for m in terms.finditer(text)]
        if self._column is not None and plan is not None:
            found += _in_column(self._column, text)
        return resolve(found) if found else found

    def find(self, text: str) -> list[Detection]:
        found = self.spans(text)
        return [Detection(start, end, kind) for start, end, kind in found] if found else []


def _in_column(column: str, text: str) -> list[Span]:
    """The detectors a column's name calls for; imported here, on first use (see phones.py)."""
    if column == "phone":
        from shared.detect.phones import find_phone_runs
        return find_phone_runs(text)
    from shared.detect.national_ids import find_national_ids
    return find_national_ids(text)


_DEFAULT = Scanner()


@lru_cache(maxsize=64)
def _scanner(terms: tuple[str, ...]) -> Scanner:
    return Scanner(terms)


def find_pii(text: str, terms: Sequence[str] = ()) -> list[Detection]:
    """Non-overlapping PII spans of `text`, sorted by position."""
    return (_scanner(tuple(terms)) if terms else _DEFAULT).find(text)
