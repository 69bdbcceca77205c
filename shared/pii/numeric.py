"""Phone numbers and payment cards: the two kinds spelled as groups of digits with separators.

Dates, amounts, versions, order numbers and IDs are spelled the same way, so a single regex finds
maximal runs of digit groups and the validators below then look, among the space-separated chunks
of a run, for the ranges that form a phone or a card. Working on chunks (rather than on one greedy
match) keeps a phone found when it sits next to a date or an amount, and leaves that neighbour alone.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Callable, NamedTuple

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


class Chunk(NamedTuple):
    start: int
    end: int
    plus: bool
    groups: tuple[tuple[str, bool], ...]   # (digits, parenthesised)
    text: str
    digits: int
    blocked: bool                          # a date, or inside an IBAN-shaped token: never part of a phone or card


_new_chunk = partial(tuple.__new__, Chunk)   # builds a Chunk from one tuple, without NamedTuple's Python __new__


def luhn_ok(digits: str) -> bool:
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


def _phone_range(chunks: list[Chunk], i: int, j: int) -> bool:
    groups = [g for chunk in chunks[i:j + 1] for g in chunk.groups]
    return is_phone(groups, chunks[i].plus)


def _card_range(chunks: list[Chunk], i: int, j: int) -> bool:
    first = chunks[i]
    if first.plus:
        return False
    if i == j:
        groups = first.groups
        if _DASHED.fullmatch(first.text) is None:
            return False
    else:
        if any(len(c.groups) != 1 for c in chunks[i:j + 1]):
            return False
        groups = tuple(c.groups[0] for c in chunks[i:j + 1])
        # A trailing group of three could as well be the next number: take it only at the end of the run.
        if len(groups) == 5 and j != len(chunks) - 1:
            return False
    if any(paren for _, paren in groups):
        return False
    lengths = tuple(len(d) for d, _ in groups)
    if len(lengths) > 1 and lengths not in _CARD_LAYOUTS:
        return False
    digits = "".join(d for d, _ in groups)
    # Payment cards start with major industry identifier 2-6; that keeps Luhn-valid IDs out.
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits)


def _longest(chunks: list[Chunk], usable: int, i: int, widest: int, low: int, high: int,
             valid: Callable[[list[Chunk], int, int], bool]) -> int:
    """The end j of the longest valid range of chunks i..j, or -1. A range never crosses a blocked
    chunk nor grows past `widest` chunks or `high` digits, and only a range of `low`..`high` digits
    is validated."""
    total = chunks[i].digits
    totals = [total]
    for j in range(i + 1, min(usable, i + widest)):
        chunk = chunks[j]
        if total > high or chunk.blocked:
            break
        total += chunk.digits
        totals.append(total)
    for j in range(i + len(totals) - 1, i - 1, -1):
        if low <= totals[j - i] <= high and valid(chunks, i, j):
            return j
    return -1


def _chunks(run: str, begin: int, zones: list[tuple[int, int]]) -> tuple[list[Chunk], list[int], list[int], int]:
    """The run's space-separated chunks, the unblocked ones that can open a phone and a card, and
    the run's digit count. A phone opens with "+", a trunk "0" or a North American area code; a
    card with its major industry identifier 2-6, in a group of at least four digits."""
    chunks: list[Chunk] = []
    phones: list[int] = []
    cards: list[int] = []
    digits = 0
    offset = begin
    for index, piece in enumerate(run.split(" ")):
        end = offset + len(piece)
        plus = piece[0] == "+"
        if piece.isdigit() or (plus and piece[1:].isdigit()):   # the common case: one plain group, no date
            first = piece[1:] if plus else piece
            groups, paren, blocked = ((first, False),), False, False
        else:
            groups = tuple([(paren or plain, bool(paren)) for paren, plain in _PARTS.findall(piece)])
            first, paren = groups[0]
            blocked = 8 <= len(piece) <= 10 and _DATE_CHUNK.fullmatch(piece) is not None
        if zones and not blocked:
            blocked = any(zs < end and offset < ze for zs, ze in zones)
        count = sum([len(group) for group, _ in groups]) if len(groups) > 1 else len(first)
        chunks.append(_new_chunk((offset, end, plus, groups, piece, count, blocked)))
        if not blocked:
            if plus or first[0] == "0" or (len(first) == 3 and first[0] != "1"):
                phones.append(index)
            if not (paren or plus) and len(first) >= 4 and first[0] in "23456":
                cards.append(index)
        digits += count
        offset = end + 1
    return chunks, phones, cards, digits


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
        chunks, phones, cards, digits = _chunks(run, match.start(), zones)
        if digits < 9:   # neither a phone nor a card
            continue
        usable = len(chunks) - 1 if _glued_to_next(text, match.end()) else len(chunks)
        for i in phones:
            if i < usable:
                j = _longest(chunks, usable, i, 8, 9, 18, _phone_range)   # 9-15 dialled, "00" and "(0)"
                if j >= 0:
                    found.append((chunks[i].start, chunks[j].end, "phone"))
        if digits >= 13:
            for i in cards:
                if i < usable:
                    j = _longest(chunks, usable, i, 5, 13, 19, _card_range)
                    if j >= 0:
                        found.append((chunks[i].start, chunks[j].end, "card"))
    return found
