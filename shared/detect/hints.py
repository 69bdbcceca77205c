"""Where the digit-based detectors (IBAN, phone and card runs, IPv4) could match, found without them.

Most scanned text holds digits (dates, amounts, versions, order numbers) but no PII, and a regex
detector pays for a match attempt at every digit. So the text is first mapped, in C, to a byte
"shape" of character classes, and a few searches on the shape, whose literal prefixes are rare,
prove for most values that a detector cannot match at all; when one might, they tell where its
scan must look. Each search is a necessary condition: it may let through a value the detector
then rejects, but it never stops one the detector would accept (every pattern here is implied by
the detector's own regex), so the results are exactly those of running every detector everywhere.

The shape has one byte per character (non-ASCII included, see `_encode_error`):
  "0" a decimal digit, "A" an ASCII capital, "a" another ASCII word character,
  "-" a dash or slash, "." a dot, comma or colon (the members of each class stop a run from
  starting right after them in the same way), " " anything else: space, "(", ")", "+", other
  punctuation, non-ASCII non-digits.
"""
from __future__ import annotations

import codecs
import re


def _classes() -> bytes:
    """The byte translation table to the shape (bytes >= 128 never occur: see _encode_error)."""
    table = bytearray(b" " * 256)
    for chars, klass in ((b"0123456789", b"0"), (b"abcdefghijklmnopqrstuvwxyz_", b"a"),
                         (b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"A"), (b"-/", b"-"), (b".,:", b".")):
        for char in chars:
            table[char] = klass[0]
    return bytes(table)


_SHAPE = _classes()


def _encode_error(error: UnicodeError) -> tuple[str, int]:
    """Non-ASCII characters keep one byte each, so positions still line up: "0" for a decimal digit
    (the detectors' `\\d` matches every Unicode digit), " " for the rest. Counting a non-ASCII
    letter as punctuation only lets more through (it stops no run from starting after it)."""
    if not isinstance(error, UnicodeEncodeError):   # registered for the shape encoding only
        raise error
    chunk = error.object[error.start:error.end]
    return "".join("0" if char.isdecimal() else " " for char in chunk), error.end


_ERRORS = "kspyder-pii-shape"
codecs.register_error(_ERRORS, _encode_error)
_ANY_DIGIT = re.compile(r"\d").search

# Nine digits, the fewest any phone or card run holds, with only separators between them ("(", ")"
# and "+" are spaces in the shape); unrolled, which the regex engine runs faster than `{8}`.
_NINE_DIGITS = rb"0" + rb"[ .\-]*+0" * 8
# A run of the numeric detectors (numeric.RUN) starts where its first digit follows neither a word
# character nor "\w-", "\w/", "\d.", "\d,", "\d:". In the shape that first digit opens the text or
# follows a space, a dash after a non-word character, or a dot after a non-digit; a run opening
# with "(" or "+" has a space before its first digit. One search per case keeps a two-byte literal
# prefix, so the engine only tries the few places where it occurs.
_AT_START = re.compile(_NINE_DIGITS).match
_AFTER_SPACE = re.compile(rb" " + _NINE_DIGITS).search
_AFTER_DASH = re.compile(rb"-0(?<![aA0]-0)" + _NINE_DIGITS[1:]).search
_AFTER_DOT = re.compile(rb"\.0(?<!0\.0)" + _NINE_DIGITS[1:]).search
# Every IPv4 address holds a.b.c.d in the shape, from the last digit of a.
_IPV4_CORE = re.compile(rb"0\.0{1,3}\.0{1,3}\.0").search
# One search for both kinds that start ".0" (a run after a dot, the dots of an address) finds
# nothing in most text, and spares the two separate ones.
_DOTTED = re.compile(rb"\.0(?:(?<=0\.0)0{0,2}\.0{1,3}\.0|(?<!0\.0)" + _NINE_DIGITS[1:] + rb")").search
_IBAN_HEAD = re.compile(rb"AA00")   # every IBAN starts [A-Z]{2}\d{2}
_LETTER = re.compile(rb"[aA]").search


def shape(text: str) -> bytes | None:
    """The text's shape, or None when it holds no digit (and so nothing these detectors find)."""
    if text.isascii():   # the common case, where encoding is a copy
        form = text.encode("ascii").translate(_SHAPE)
        return form if form.find(b"0") >= 0 else None
    if _ANY_DIGIT(text) is None:
        return None
    return text.encode("ascii", _ERRORS).translate(_SHAPE)


def _run_windows(form: bytes, searches: tuple) -> list[tuple[int, int]]:
    """Text windows (start, end) holding every phone or card run: each reaches from just after the
    last letter before a run start to the first letter after it. No run holds a letter, so none
    crosses a window's edge, and scanning a window finds what a scan of the whole text finds in it."""
    windows: list[tuple[int, int]] = []
    first = _AT_START(form) if form[0] == 48 else None   # 48: "0"
    pending = []   # each kind's next candidate: searched again only once a window has passed it
    for search in searches:
        match = search(form)
        pending.append(match)
        if match is not None and (first is None or match.start() < first.start()):
            first = match
    while first is not None:
        start, end = first.span()
        at = windows[-1][1] + 1 if windows else 0   # where this window may start
        start = max(form.rfind(b"a", at, start), form.rfind(b"A", at, start), at - 1) + 1
        letter = _LETTER(form, end)
        stop = len(form) if letter is None else letter.start()
        windows.append((start, stop))
        first = None
        for index, match in enumerate(pending):
            if match is not None and match.start() <= stop:
                match = pending[index] = searches[index](form, stop + 1)
            if match is not None and (first is None or match.start() < first.start()):
                first = match
    return windows


_ALL_STARTS = (_AFTER_SPACE, _AFTER_DASH, _AFTER_DOT)
_UNDOTTED_STARTS = (_AFTER_SPACE, _AFTER_DASH)


def hints(text: str) -> tuple[list[int], int, list[tuple[int, int]]] | None:
    """(iban, ipv4, runs): the text positions where an IBAN can start; the position from which the
    IPv4 detector must scan, or -1 when no address can be there; the windows that hold every phone
    and card run (none for most text). Each is exact: no match of that detector lies elsewhere.
    None when the text has no digit at all."""
    form = shape(text)
    if form is None:
        return None
    heads = [match.start() for match in _IBAN_HEAD.finditer(form)] if _IBAN_HEAD.search(form) else []
    dotted = _DOTTED(form)
    if dotted is None:
        return heads, -1, _run_windows(form, _UNDOTTED_STARTS)
    core = _IPV4_CORE(form, max(dotted.start() - 1, 0))
    # An address starts at most two characters before the last digit of its first number.
    return heads, -1 if core is None else max(core.start() - 2, 0), _run_windows(form, _ALL_STARTS)
