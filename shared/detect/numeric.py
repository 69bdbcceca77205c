"""Phone numbers and payment cards: the two kinds spelled as groups of digits with separators.

Dates, amounts, versions, order numbers and IDs are spelled the same way, so a single regex finds
maximal runs of digit groups and the validators below then look, among the space-separated chunks
of a run, for the ranges that form a phone or a card. Working on chunks (rather than on one greedy
match) keeps a phone found when it sits next to a date or an amount, and leaves that neighbour alone.

The regex only runs inside the windows `hints` finds, and only runs of nine digits or more reach
the Python validators, which then try only the chunks that can open a phone or a card.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

_GROUP = r"(?:\(\d{1,5}\)|\d+)"
# One separator between groups; none is needed next to a parenthesised group: "+44(0)20", "(202)555".
_SEP = r"(?:[ .\-]|(?<=\))|(?=\())"
# Digits, with only run characters between them, from here on: `{n}` of them.
_DIGITS_AHEAD = r"(?=(?:[(). +\-]*\d){{{n}}})"
# A run must not continue a word, an identifier ("ORD-2024", "v2.3"), a decimal or a time ("10:30"),
# and only runs of 9 digits or more can hold a phone or a card. The pattern opens with a plain
# character class so the regex engine skips to candidate characters in C; the conditions on what
# precedes the run are lookbehinds over that first character (`.`), and the digit count is a
# lookahead, so dates, amounts and order numbers fail inside the engine instead of in Python.
RUN = re.compile(
    r"[\d(+](?<![\w+].)"
    rf"(?:(?<=\+){_DIGITS_AHEAD.format(n=9)}{_GROUP}"
    rf"|(?<=\()(?<!\w[\-/].)(?<!\d[.,:].){_DIGITS_AHEAD.format(n=9)}\d{{1,5}}\)"
    rf"|(?<=\d)(?<!\w[\-/].)(?<!\d[.,:].){_DIGITS_AHEAD.format(n=8)}\d*)"
    rf"(?:{_SEP}{_GROUP})*"
)
_PARTS = re.compile(r"\((\d+)\)|(\d+)")
_DASHED = re.compile(r"\d+(?:-\d+)*")
_DATE_CHUNK = re.compile(r"\d{4}([-./])\d{1,2}\1\d{1,2}|\d{1,2}([-./])\d{1,2}\2\d{4}")

# National significant number lengths (digits after the country code, without a trunk 0) for
# common country codes. Codes form a prefix-free set, so at most one entry matches a number.
_NSN: dict[str, frozenset[int]] = {cc: frozenset(lengths) for cc, lengths in {
    "1": (10,), "7": (10,), "20": (8, 9, 10), "27": (9,), "30": (10,), "31": (9,), "32": (8, 9),
    "33": (9,), "34": (9,), "36": (8, 9), "39": range(6, 12), "40": (9,), "41": (9,),
    "43": range(4, 14), "44": (9, 10), "45": (8,), "46": range(7, 11), "47": (8,), "48": (9,),
    "49": range(6, 14), "52": (10,), "55": (10, 11), "61": (9,), "64": range(8, 11), "65": (8,),
    "81": (9, 10), "86": (10, 11), "90": (10,), "91": (10,), "351": (9,), "352": range(4, 12),
    "353": range(7, 10), "358": range(5, 13), "852": (8,), "971": (8, 9), "972": (8, 9),
}.items()}
_CARD_LAYOUTS = {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3), (4, 4, 4, 4, 3)}
_LUHN_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


class Chunks(NamedTuple):
    """A run's space-separated chunks, one list per field: entry i of each describes chunk i."""
    starts: list[int]
    ends: list[int]
    texts: list[str]
    groups: list[tuple[tuple[str, bool], ...]]   # (digits, parenthesised)
    digits: list[int]
    blocked: list[bool]   # a date, or inside an IBAN-shaped token: never part of a phone or card
    plus: bool            # the run opens with "+": only its first chunk can


def luhn_ok(digits: str) -> bool:
    if not digits.isascii():   # other scripts' digits (`\d` matches them) count by their value
        digits = "".join([str(int(char)) for char in digits])
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        total += _LUHN_DOUBLED[digit] if position & 1 else digit
    return total % 10 == 0


def _international(groups: list[tuple[str, bool]]) -> bool:
    # "(0)" is the national trunk prefix some people write after the country code: not dialled.
    digits = "".join([d for d, paren in groups if not (paren and d == "0")])
    if not 9 <= len(digits) <= 15 or digits[0] == "0":
        return False
    for size in (1, 2, 3):
        lengths = _NSN.get(digits[:size])
        if lengths is not None:
            return len(digits) - size in lengths
    return True


def is_phone(groups: list[tuple[str, bool]], plus: bool) -> bool:
    if plus:
        return _international(groups)
    first, first_paren = groups[0]
    if first.startswith("00") and not first_paren:
        rest = [(first[2:], False)] if len(first) > 2 else []
        rest += groups[1:]
        return bool(rest) and rest[0][0][:1] not in ("", "0") and _international(rest)
    if len(groups) < 2 or any(paren for _, paren in groups[1:]):
        return False
    lengths = [len(d) for d, _ in groups]
    total = sum(lengths)
    if first[0] == "0":   # national form with trunk prefix: 020 7946 0958, 01 23 45 67 89
        return (9 <= total <= 11 and 2 <= lengths[0] <= 5 and first[1] != "0"
                and all(2 <= n <= 8 for n in lengths[1:]))
    # North American national form: (202) 555-0143, 202-555-0143
    return lengths == [3, 3, 4] and first[0] in "23456789" and groups[1][0][0] in "23456789"


def _phone_range(chunks: Chunks, i: int, j: int) -> bool:
    return is_phone([g for groups in chunks.groups[i:j + 1] for g in groups], chunks.plus and i == 0)


def _card_range(chunks: Chunks, i: int, j: int) -> bool:
    if chunks.plus and i == 0:
        return False
    if i == j:
        groups = chunks.groups[i]
        if _DASHED.fullmatch(chunks.texts[i]) is None:
            return False
    else:
        if any(len(groups) != 1 for groups in chunks.groups[i:j + 1]):
            return False
        groups = tuple(groups[0] for groups in chunks.groups[i:j + 1])
        # A trailing group of three could as well be the next number: take it only at the end of the run.
        if len(groups) == 5 and j != len(chunks.texts) - 1:
            return False
    if any(paren for _, paren in groups):
        return False
    lengths = tuple(len(d) for d, _ in groups)
    if len(lengths) > 1 and lengths not in _CARD_LAYOUTS:
        return False
    digits = "".join(d for d, _ in groups)
    # Payment cards start with major industry identifier 2-6; that keeps Luhn-valid IDs out.
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)


def _longest(chunks: Chunks, usable: int, i: int, widest: int, low: int, high: int,
             valid: Callable[[Chunks, int, int], bool]) -> int:
    """The end j of the longest valid range of chunks i..j, or -1. A range never crosses a blocked
    chunk nor grows past `widest` chunks or `high` digits, and only a range of `low`..`high` digits
    is validated."""
    digits, blocked = chunks.digits, chunks.blocked
    total = digits[i]
    totals = [total]
    for j in range(i + 1, min(usable, i + widest)):
        if total > high or blocked[j]:
            break
        total += digits[j]
        totals.append(total)
    for j in range(i + len(totals) - 1, i - 1, -1):
        if low <= totals[j - i] <= high and valid(chunks, i, j):
            return j
    return -1


def _chunks(run: str, begin: int, zones: list[tuple[int, int]]) -> Chunks:
    texts = run.split(" ")
    starts: list[int] = []
    ends: list[int] = []
    groups: list[tuple[tuple[str, bool], ...]] = []
    digits: list[int] = []
    blocked: list[bool] = []
    offset = begin
    for piece in texts:
        starts.append(offset)
        offset += len(piece)
        ends.append(offset)
        offset += 1
        if piece.isdigit() or (piece[0] == "+" and piece[1:].isdigit()):   # one plain group: no date
            plain = piece.lstrip("+")
            groups.append(((plain, False),))
            digits.append(len(plain))
            blocked.append(False)
        else:
            parts = tuple([(paren or plain, bool(paren)) for paren, plain in _PARTS.findall(piece)])
            groups.append(parts)
            digits.append(sum([len(d) for d, _ in parts]))
            blocked.append(8 <= len(piece) <= 10 and _DATE_CHUNK.fullmatch(piece) is not None)
    if zones:
        blocked = [stop or any(zs < e and s < ze for zs, ze in zones)
                   for s, e, stop in zip(starts, ends, blocked, strict=True)]
    # tuple.__new__ skips the NamedTuple's Python-level __new__: this runs for every long run.
    return tuple.__new__(Chunks, (starts, ends, texts, groups, digits, blocked, run[0] == "+"))


def _glued_to_next(text: str, end: int) -> bool:
    """True when the run goes on as a word, decimal, time or path: its last chunk is not a number on its own."""
    if end >= len(text):
        return False
    char = text[end]
    if char.isalnum() or char in "_@":
        return True
    return char in ".,:-/" and end + 1 < len(text) and text[end + 1].isalnum()


def find_numeric(text: str, zones: list[tuple[int, int]], start: int = 0, end: int | None = None
                 ) -> list[tuple[int, int, str]]:
    """Phone and card spans as (start, end, kind) within text[start:end], whose edges no run
    crosses (see `hints`); zones are IBAN-shaped spans to stay out of.

    Candidates are the longest valid range from each chunk that can open one. They may overlap:
    `detectors.resolve` picks among them, so one false start cannot hide a real value."""
    found: list[tuple[int, int, str]] = []
    for match in RUN.finditer(text, start, len(text) if end is None else end):
        run = match.group()
        if len(run) < 9:
            continue
        chunks = _chunks(run, match.start(), zones)
        total = sum(chunks.digits)
        if total < 9:   # neither a phone nor a card
            continue
        usable = len(chunks.texts) - 1 if _glued_to_next(text, match.end()) else len(chunks.texts)
        phones: list[tuple[int, int, str]] = []
        cards: list[tuple[int, int, str]] = []
        blocked, groups, digits = chunks.blocked, chunks.groups, chunks.digits
        rest = sum(digits[:usable])   # digits from chunk i to the last usable one
        inside_plus = -1              # the last chunk of the "+" number the run opens with, once found
        for i in range(usable):
            if rest < 9:   # too few digits left for any phone or card
                break
            count = digits[i]
            if not blocked[i]:
                first, paren = groups[i][0]
                plus = chunks.plus and i == 0
                # A phone opens with "+", a trunk "0" or a North American area code; a card with
                # its major industry identifier 2-6, in a group of at least four digits (13-19 in all).
                # Chunks inside a "+" number already found are its digits, not the start of another
                # number ("+44 00 1000 0000 1.00" read from "00" would swallow the amount after it).
                if i > inside_plus and (plus or first[0] == "0" or (len(first) == 3 and first[0] != "1")):
                    j = _longest(chunks, usable, i, 8, 9, 18, _phone_range)   # 9-15 dialled, "00", "(0)"
                    if j >= 0:
                        phones.append((chunks.starts[i], chunks.ends[j], "phone"))
                        if plus:
                            inside_plus = j
                if rest >= 13 and not (paren or plus) and len(first) >= 4 and first[0] in "23456":
                    j = _longest(chunks, usable, i, 5, 13, 19, _card_range)
                    if j >= 0:
                        cards.append((chunks.starts[i], chunks.ends[j], "card"))
            rest -= count
        found += phones
        found += cards
    return found
