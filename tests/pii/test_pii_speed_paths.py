"""The free-text scan's fast paths find exactly what the plain detectors find.

Each shortcut is checked against a straightforward reference on generated text that is dense in
the characters the shortcuts reason about (digits, separators, capitals, "@", ":", non-ASCII):
the rewritten regexes against their lookbehind-first spelling, the anchored e-mail match against a
full scan, the shape hints against every position a detector could match at, and the whole scan
against the same detectors run over the whole text without any hint.
"""
from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.detect import detectors, numeric
from shared.detect import hints as hints_module
from shared.detect.detectors import Detection, Scanner, find_pii, iban_ok, resolve
from shared.detect.hints import hints
from shared.detect.numeric import find_numeric

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- references: the plain spellings
_GROUP = r"(?:\(\d{1,5}\)|\d+)"
_SEP = r"(?:[ .\-]|(?<=\))|(?=\())"
REF_RUN = re.compile(
    rf"(?=[\d(+])(?:(?<![\w+])\+|(?<![\w+])(?<!\w[\-/])(?<!\d[.,:]))(?=[\d(]){_GROUP}(?:{_SEP}{_GROUP})*")
REF_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
REF_IPV6 = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}|(?=:))(?::[0-9A-Fa-f]{0,4}){2,7}"
                      r"(?:\.\d{1,3}\.\d{1,3}\.\d{1,3})?(?![\w:]|\.\d)")
REF_IBAN = re.compile(r"(?<!\w)[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?!\w)")
DIGITLESS = re.compile(r"[^\d]*")

# ---------------------------------------------------------------- generated text
NOISE = "0123456789" * 3 + "  ...--()++::@,,//_\n" + "aAbBfFeEGBDRNLWSTxz" + "é٣٤Å€"
PIECES = [
    "+44 20 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958", "(202) 555-0143", "202.555.0143",
    "020 7946 0958", "06.12.34.56.78", "+33 1 23 45 67 89", "4111 1111 1111 1111", "3782 822463 10005",
    "5555555555554444", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "NL91ABNA0417164300",
    "192.168.1.20", "10.0.0.1", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.128", "fe80::1",
    "jane.doe@example.com", "a+tag@sub.example.co.uk", "zoë@bücher.de", "ORD-2024-000123", "2024-03-15",
    "2024-03-15T10:30:00+01:00", "v2.3.1", "1,234.56", "12 345,67", "1.2.3.4.5", "00:1A:2B:3C:4D:5E",
    "+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", "٢٠٢-٥٥٥-٠١٤٣",
]
JOINERS = ["", " ", "  ", ".", "-", ", ", ":", "/", "\n", "(", ")", "+", "@", "a", "Z", "é", "٣"]
noise = st.text(NOISE, max_size=12)
TEXT = st.one_of(
    st.text(NOISE, max_size=60),
    st.lists(st.tuples(st.one_of(st.sampled_from(PIECES), noise), st.sampled_from(JOINERS)), max_size=6)
    .map(lambda parts: "".join(piece + joiner for piece, joiner in parts)),
)


def long_runs(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """Runs the numeric detectors look at: 9 characters and 9 digits or more."""
    return [m.span() for m in pattern.finditer(text)
            if len(m.group()) >= 9 and sum(c.isdecimal() for c in m.group()) >= 9]


def unhinted_spans(text: str) -> list[tuple[int, int, str]]:
    """Every detector over the whole text, with no hint, anchor or window."""
    found: list[tuple[int, int, str]] = [(m.start(), m.end(), "email") for m in detectors._EMAIL.finditer(text)]
    for m in REF_IPV6.finditer(text):
        if m.group().strip(":"):
            try:
                detectors.ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            found.append((m.start(), m.end(), "ipv6"))
    zones = detectors._ibans(text, found, list(range(len(text))))
    found += find_numeric(text, zones)
    detectors._ipv4s(text, found, 0)
    return resolve(found)


# ---------------------------------------------------------------- the rewritten regexes
@SETTINGS
@given(TEXT)
def test_rewritten_patterns_match_their_plain_spelling(text: str) -> None:
    for fast, plain in ((detectors._IPV4, REF_IPV4), (detectors._IPV6, REF_IPV6), (detectors._IBAN, REF_IBAN)):
        assert [m.span() for m in fast.finditer(text)] == [m.span() for m in plain.finditer(text)]
    # The run pattern skips runs too short to hold a phone or a card; the long ones are the same.
    assert long_runs(numeric.RUN, text) == long_runs(REF_RUN, text)


# ---------------------------------------------------------------- anchored e-mails
@SETTINGS
@given(TEXT)
def test_emails_matched_at_their_at_sign_are_those_of_a_full_scan(text: str) -> None:
    found: list[tuple[int, int, str]] = []
    detectors._emails(text, found)
    assert found == [(m.start(), m.end(), "email") for m in detectors._EMAIL.finditer(text)]


# ---------------------------------------------------------------- shape hints
@SETTINGS
@given(TEXT)
def test_hints_never_hide_a_match(text: str) -> None:
    plan = hints(text)
    if plan is None:
        assert DIGITLESS.fullmatch(text)
        return
    heads, ipv4_from, windows = plan
    for position in range(len(text)):
        if detectors._IBAN.match(text, position):
            assert position in heads
        if detectors._IPV4.match(text, position):
            assert 0 <= ipv4_from <= position
    for start, end in long_runs(REF_RUN, text):
        assert any(low <= start and end <= high for low, high in windows), (start, end, windows)


@SETTINGS
@given(TEXT)
def test_scan_finds_what_the_unhinted_detectors_find(text: str) -> None:
    assert Scanner().spans(text) == unhinted_spans(text)


def test_hints_on_common_text() -> None:
    assert hints("no digits here, not even one") is None
    assert hints("Zoë Ångström from Malmö") is None
    assert hints("Order ORD-2024-000123 on 2024-03-15, refund 1,234.56, app v4.11.0") == ([], -1, [])
    text = "Call +44 20 7946 0958 or pay GB82 WEST 1234 5698 7654 32 from 10.0.0.1"
    heads, ipv4_from, windows = hints(text)
    assert text.index("GB82") in heads
    assert ipv4_from <= text.index("10.0.0.1")
    assert any(low <= text.index("+44") and text.index(" or") <= high for low, high in windows)


def test_run_at_the_very_start_and_end_of_the_text() -> None:
    assert find_pii("020 7946 0958") == [Detection(0, 13, "phone")]
    assert find_pii("-020 7946 0958")[0].kind == "phone"
    assert find_pii(".4111 1111 1111 1111")[0].kind == "card"


def test_unicode_digits_take_the_same_paths() -> None:
    text = "call +٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨ today"
    assert hints_module.shape(text) is not None
    assert [(d.kind, text[d.start:d.end]) for d in find_pii(text)] == [("phone", "+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨")]


# ---------------------------------------------------------------- small helpers
def test_spans_are_find_as_tuples() -> None:
    text = "Jane (jane@x.org, +44 20 7946 0958) paid 4111 1111 1111 1111 from 10.0.0.1"
    scanner = Scanner(["Jane"])
    assert [(d.start, d.end, d.kind) for d in scanner.find(text)] == scanner.spans(text)
    assert scanner.find("nothing") == [] and scanner.spans("nothing") == []


def test_iban_checksum_reads_letters_as_base_36_in_either_case() -> None:
    assert iban_ok("GB82WEST12345698765432") and iban_ok("gb82west12345698765432")
    assert not iban_ok("GB82WEST12345698765433")
