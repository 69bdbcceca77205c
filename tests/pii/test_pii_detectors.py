"""Free-text detectors: recall on the formats people write, and precision on the look-alikes
(dates, amounts, versions, order numbers, IDs) that a data pipeline must not destroy."""
from __future__ import annotations

from itertools import pairwise

import pytest

from shared.detect.detectors import Detection, find_pii, iban_ok
from shared.detect.numeric import luhn_ok


def spans(text: str, terms: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(text[d.start:d.end], d.kind) for d in find_pii(text, terms)]


POSITIVES = [
    # email
    ("write to jane.doe@example.com today", "jane.doe@example.com", "email"),
    ("a+tag@sub.example.co.uk.", "a+tag@sub.example.co.uk", "email"),
    ("<zoë.müller@bücher.de>", "zoë.müller@bücher.de", "email"),
    ("mailto:x_y-z@host-name.io", "x_y-z@host-name.io", "email"),
    # phone, international
    ("call +44 20 7946 0958 now", "+44 20 7946 0958", "phone"),
    ("tel: +1-202-555-0143", "+1-202-555-0143", "phone"),
    ("+33 1 23 45 67 89", "+33 1 23 45 67 89", "phone"),
    ("ring 0044 20 7946 0958.", "0044 20 7946 0958", "phone"),
    ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958", "phone"),
    ("Tel:+442079460958", "+442079460958", "phone"),
    ("bare 00442079460958 works", "00442079460958", "phone"),
    ("+49 30 12345678", "+49 30 12345678", "phone"),
    ("(+31 20 123 4567)", "+31 20 123 4567", "phone"),
    # phone, national
    ("office (202) 555-0143", "(202) 555-0143", "phone"),
    ("202-555-0143", "202-555-0143", "phone"),
    ("202.555.0143", "202.555.0143", "phone"),
    ("London 020 7946 0958", "020 7946 0958", "phone"),
    ("Paris 01 23 45 67 89,", "01 23 45 67 89", "phone"),
    ("mobile 06.12.34.56.78", "06.12.34.56.78", "phone"),
    ("07700 900123", "07700 900123", "phone"),
    ("(020) 7946 0958", "(020) 7946 0958", "phone"),
    # IBAN
    ("IBAN GB82 WEST 1234 5698 7654 32.", "GB82 WEST 1234 5698 7654 32", "iban"),
    ("GB82WEST12345698765432", "GB82WEST12345698765432", "iban"),
    ("pay DE89 3704 0044 0532 0130 00 by", "DE89 3704 0044 0532 0130 00", "iban"),
    ("FR14 2004 1010 0505 0001 3M02 606", "FR14 2004 1010 0505 0001 3M02 606", "iban"),
    ("NL91ABNA0417164300", "NL91ABNA0417164300", "iban"),
    ("BE68 5390 0754 7034 PAID", "BE68 5390 0754 7034", "iban"),
    ("NO9386011117947", "NO9386011117947", "iban"),
    # card
    ("card 4111 1111 1111 1111 exp", "4111 1111 1111 1111", "card"),
    ("4111-1111-1111-1111", "4111-1111-1111-1111", "card"),
    ("5555555555554444", "5555555555554444", "card"),
    ("amex 3782 822463 10005", "3782 822463 10005", "card"),
    ("diners 3056 9309 0259 04", "3056 9309 0259 04", "card"),
    ("4222222222222", "4222222222222", "card"),
    ("6011 0009 9013 9424", "6011 0009 9013 9424", "card"),
    # IP
    ("from 192.168.1.20:8080", "192.168.1.20", "ipv4"),
    ("10.0.0.1/8", "10.0.0.1", "ipv4"),
    ("host 255.255.255.255.", "255.255.255.255", "ipv4"),
    ("addr 2001:db8::8a2e:370:7334 seen", "2001:db8::8a2e:370:7334", "ipv6"),
    ("[fe80::1]:443", "fe80::1", "ipv6"),
    ("::1", "::1", "ipv6"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ipv6"),
    ("mapped ::ffff:192.0.2.128 here", "::ffff:192.0.2.128", "ipv6"),
]


@pytest.mark.parametrize(("text", "expected", "kind"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_detects(text: str, expected: str, kind: str) -> None:
    assert spans(text) == [(expected, kind)]


NEGATIVES = [
    # order numbers and invoice ids
    "ORD-2024-000123", "order ORD-2024-000123 shipped", "INV-12345678", "invoice #INV-2024-0042",
    "PO 2024/000123/77", "ref ABC-1234-5678-9012",
    # ISO dates and datetimes, other date forms, times
    "2024-03-15", "on 2024-03-15 at 10:30", "2024-03-15T10:30:00Z", "2024-03-15T10:30:00+01:00",
    "2024-03-15 10:30:00.123456", "15.03.2024", "15/03/2024 12:00", "12:34:56", "23:59:59.999",
    # version strings
    "v2.3.1", "version 10.4.17", "1.2.3.4.5", "release 2024.03.1", "v1.2.3.4",
    # amounts
    "1,234.56", "EUR 12 345,67", "1234.50", "$1,234,567.89", "1.234.567,89 EUR", "12 345 678,90",
    # UUIDs and hex ids
    "123e4567-e89b-12d3-a456-426614174000", "12345678-1234-1234-1234-123456789012",
    "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    # postcodes
    "SW1A 1AA", "75008 Paris", "90210-1234", "1012 AB Amsterdam", "10115 Berlin",
    # plain integers and IDs without separators
    "1234567890", "0123456789", "id 98765432101234", "12345678901234567890", "1234567890123456",
    "000123456789",
    # bad checksums
    "GB82 WEST 1234 5698 7654 33", "GB83WEST12345698765432", "DE89 3704 0044 0532 0130 01",
    "NL91 ABNA 0417 1643 01", "4111 1111 1111 1112", "4111-1111-1111-1121", "5555555555554445",
    # IP look-alikes
    "256.1.1.1", "1.2.3", "00:1A:2B:3C:4D:5E", "std::vector", "a :: b", "10:30",
    # phone look-alikes: too few digits, wrong shape
    "123-456-7890", "555-0143", "020 7946", "+44 20", "0.5 0.25 0.125", "1 2 3 4 5 6 7 8 9 10",
    # no trigger characters at all
    "", "plain words only", "Zoë Ångström from Malmö",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_leaves_lookalikes_alone(text: str) -> None:
    assert find_pii(text) == []


def test_phone_next_to_date_and_amount_is_found_alone() -> None:
    text = "2024-03-15 020 7946 0958 12 345,67"
    assert spans(text) == [("020 7946 0958", "phone")]


def test_phone_does_not_swallow_following_number() -> None:
    assert spans("+33 1 23 45 67 89 12 345,67") == [("+33 1 23 45 67 89", "phone")]
    assert spans("+44 20 7946 0958 10.4.17") == [("+44 20 7946 0958", "phone")]


def test_card_next_to_amount() -> None:
    assert spans("4111 1111 1111 1111 12 345,67") == [("4111 1111 1111 1111", "card")]


def test_iban_then_phone() -> None:
    assert spans("BE68 5390 0754 7034 020 7946 0958") == [
        ("BE68 5390 0754 7034", "iban"), ("020 7946 0958", "phone")]


def test_invalid_iban_body_is_not_a_phone_or_card() -> None:
    assert find_pii("DE89 3704 0044 0532 0130 01 and NL91 ABNA 0417 1643 01") == []


def test_email_wins_over_term_inside_it() -> None:
    assert spans("jane@example.com", ("jane",)) == [("jane@example.com", "email")]


def test_terms_case_insensitive_on_word_boundaries() -> None:
    text = "Ann met ANN SMITH; annual report by ann-marie"
    found = spans(text, ("ann smith", "Ann"))
    assert found == [("Ann", "term"), ("ANN SMITH", "term"), ("ann", "term")]


def test_terms_with_punctuation_are_literal() -> None:
    assert spans("client O'Brien (a.b.) paid", ("O'Brien", "a.b.")) == [("O'Brien", "term"), ("a.b.", "term")]
    assert find_pii("axb", ("a.b",)) == []


def test_blank_terms_are_ignored() -> None:
    assert find_pii("nothing here", ("", "  ")) == []


def test_results_sorted_and_non_overlapping() -> None:
    text = ("Jane (jane@x.org, +44 20 7946 0958) paid 4111 1111 1111 1111 from 10.0.0.1 "
            "to GB82 WEST 1234 5698 7654 32 on 2024-03-15; Jane again")
    found = find_pii(text, ["Jane"])
    assert [d.kind for d in found] == ["term", "email", "phone", "card", "ipv4", "iban", "term"]
    assert all(a.end <= b.start for a, b in pairwise(found))
    assert all(isinstance(d, Detection) for d in found)


def test_detection_is_frozen() -> None:
    detection = Detection(0, 1, "email")
    with pytest.raises(AttributeError):
        detection.start = 3  # type: ignore[misc]


@pytest.mark.parametrize(("number", "ok"), [("4111111111111111", True), ("4111111111111112", False),
                                             ("378282246310005", True), ("0", True), ("79927398713", True),
                                             ("79927398710", False)])
def test_luhn(number: str, ok: bool) -> None:
    assert luhn_ok(number) is ok


@pytest.mark.parametrize(("iban", "ok"), [("GB82WEST12345698765432", True), ("GB82WEST12345698765433", False),
                                          ("DE89370400440532013000", True), ("DE8937040044053201300", False),
                                          ("XX00", False)])
def test_iban_checksum(iban: str, ok: bool) -> None:
    assert iban_ok(iban) is ok


def test_a_plus_number_is_not_read_again_from_its_trunk_digits():
    """Found by the property tests: "+44 00 1000 0000" read again from "00" (as 00 1 ...) swallowed
    the amount after it and, being longer, hid the real number's "+44"."""
    text = "+44 00 1000 0000 1.00"
    assert [(d.start, d.end, d.kind) for d in find_pii(text)] == [(0, 16, "phone")]
