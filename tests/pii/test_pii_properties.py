"""Property tests: PII planted anywhere in free text among look-alikes never survives a scan, and
the look-alikes (dates, amounts, order numbers, versions) always do."""
from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.config.models import Column
from shared.pii.stripper import PiiStripper

COLUMNS = {"notes": Column.model_validate({"type": "text"}), "doc": Column.model_validate({"type": "json"})}
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

digits = lambda n: st.text(string.digits, min_size=n, max_size=n)  # noqa: E731
lead = st.sampled_from("23456789")


# ---------------------------------------------------------------- planted PII
@st.composite
def emails(draw) -> str:
    alnum = string.ascii_lowercase + string.digits
    local = draw(st.text(alnum, min_size=1, max_size=10))
    if draw(st.booleans()):
        local += draw(st.sampled_from("._+-")) + draw(st.text(alnum, min_size=1, max_size=6))
    labels = draw(st.lists(st.text(alnum, min_size=1, max_size=10), min_size=1, max_size=3))
    tld = draw(st.text(string.ascii_lowercase, min_size=2, max_size=6))
    return f"{local}@{'.'.join(labels)}.{tld}"


@st.composite
def phones(draw) -> str:
    d = lambda n: draw(digits(n))  # noqa: E731
    return draw(st.sampled_from([
        f"+44 {d(2)} {d(4)} {d(4)}",
        f"+44 (0){d(2)} {d(4)} {d(4)}",
        f"+1-{draw(lead)}{d(2)}-{draw(lead)}{d(2)}-{d(4)}",
        f"+33 {draw(lead)} {d(2)} {d(2)} {d(2)} {d(2)}",
        f"0044 {d(2)} {d(4)} {d(4)}",
        f"({draw(lead)}{d(2)}) {draw(lead)}{d(2)}-{d(4)}",
        f"{draw(lead)}{d(2)}-{draw(lead)}{d(2)}-{d(4)}",
        f"0{draw(lead)}{d(1)} {d(4)} {d(4)}",
        f"0{draw(lead)} {d(2)} {d(2)} {d(2)} {d(2)}",
        f"0{draw(lead)}.{d(2)}.{d(2)}.{d(2)}.{d(2)}",
    ]))


IBAN_FORMATS = {"GB": "LLLL" + "9" * 14, "DE": "9" * 18, "NL": "LLLL" + "9" * 10, "BE": "9" * 12,
                "FR": "9" * 23, "NO": "9" * 11, "IT": "L" + "9" * 22}


def iban_check_digits(country: str, bban: str) -> str:
    number = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{98 - number % 97:02d}"


@st.composite
def ibans(draw) -> str:
    country = draw(st.sampled_from(sorted(IBAN_FORMATS)))
    bban = "".join(draw(st.sampled_from(string.ascii_uppercase if c == "L" else string.digits))
                   for c in IBAN_FORMATS[country])
    compact = country + iban_check_digits(country, bban) + bban
    if draw(st.booleans()):
        return compact
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


def luhn_complete(partial: str) -> str:
    total = 0
    for position, char in enumerate(reversed(partial)):
        n = int(char)
        if position % 2 == 0:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return partial + str(-total % 10)


@st.composite
def cards(draw) -> str:
    prefix, length = draw(st.sampled_from([("4", 16), ("51", 16), ("55", 16), ("6011", 16), ("2221", 16),
                                           ("34", 15), ("37", 15)]))
    number = luhn_complete(prefix + draw(digits(length - len(prefix) - 1)))
    style = draw(st.sampled_from(["compact", "space", "dash"]))
    if style == "compact":
        return number
    sizes = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
    parts, at = [], 0
    for size in sizes:
        parts.append(number[at:at + size])
        at += size
    return (" " if style == "space" or length == 15 else "-").join(parts)


ipv4s = st.ip_addresses(v=4).map(str)
ipv6s = st.ip_addresses(v=6).filter(lambda a: not a.is_unspecified).flatmap(
    lambda a: st.sampled_from([str(a), a.exploded]))

PII = st.one_of(
    emails().map(lambda v: ("email", v)), phones().map(lambda v: ("phone", v)),
    ibans().map(lambda v: ("iban", v)), cards().map(lambda v: ("card", v)),
    ipv4s.map(lambda v: ("ip", v)), ipv6s.map(lambda v: ("ip", v)),
)

# ---------------------------------------------------------------- look-alikes that must survive
words = st.text("abcdefghijklmnopqrstuvwxyzéüß", min_size=1, max_size=10)
iso_dates = st.dates(date(1900, 1, 1), date(2099, 12, 31)).map(date.isoformat)
iso_datetimes = st.datetimes(datetime(1900, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC).isoformat(timespec=("seconds", "microseconds")[d.microsecond % 2]))


@st.composite
def amounts(draw) -> str:
    whole, cents = draw(st.integers(1, 9_999_999)), draw(st.integers(0, 99))
    style = draw(st.sampled_from(["en", "fr", "plain"]))
    if style == "en":
        return f"{whole:,}.{cents:02d}"
    if style == "fr":
        return f"{whole:,}".replace(",", " ") + f",{cents:02d}"
    return f"{whole}.{cents:02d}"


order_numbers = st.one_of(
    st.builds(lambda y, n: f"ORD-{y}-{n:06d}", st.integers(2000, 2099), st.integers(0, 999_999)),
    st.builds(lambda n: f"INV-{n:08d}", st.integers(0, 99_999_999)),
)
versions = st.builds(lambda v, a, b, c: f"{v}{a}.{b}.{c}", st.sampled_from(["v", ""]),
                     st.integers(0, 99), st.integers(0, 99), st.integers(0, 999))
KEEP = st.one_of(iso_dates, iso_datetimes, amounts(), order_numbers, versions)

TOKENS = st.lists(st.one_of(words.map(lambda v: ("word", v)), KEEP.map(lambda v: ("keep", v)), PII),
                  min_size=1, max_size=14)
JOINERS = st.sampled_from([" ", " ", " ", ", ", "\n", "; "])


def compose(tokens: list[tuple[str, str]], joiner: str) -> str:
    return joiner.join(value for _, value in tokens)


def survives(value: str, text: str) -> bool:
    """Whole-token occurrence: "1.2.3.4" inside a surviving "11.2.3.45" is not the planted value."""
    return re.search(rf"(?<![\w.:@+-]){re.escape(value)}(?![\w.:@-]|,\d)", text) is not None


def forms(kind: str, value: str) -> list[str]:
    found = [value]
    if kind in ("phone", "card"):
        found.append(re.sub(r"\D", "", value))
    if kind == "iban":
        found.append(value.replace(" ", ""))
    return found


def check(tokens: list[tuple[str, str]], joiner: str, scan: str) -> None:
    text = compose(tokens, joiner)
    stripper = PiiStripper(COLUMNS, scan=scan, key=b"property-key")
    out = stripper.apply({"notes": text, "doc": {"a": [text], "b": {"c": text}}})
    for output in (out["notes"], out["doc"]["a"][0], out["doc"]["b"]["c"]):
        for kind, value in tokens:
            if kind in ("word", "keep"):
                if kind == "keep":
                    assert value in output, f"look-alike {value!r} was altered in {output!r}"
                continue
            for form in forms(kind, value):
                assert not survives(form, output), f"{kind} {form!r} survived in {output!r}"
                assert form not in output or kind == "ip", f"{kind} {form!r} survived in {output!r}"


@SETTINGS
@given(TOKENS, JOINERS)
def test_planted_pii_never_survives_redact(tokens, joiner) -> None:
    check(tokens, joiner, "redact")


@SETTINGS
@given(TOKENS, JOINERS)
def test_planted_pii_never_survives_hash(tokens, joiner) -> None:
    check(tokens, joiner, "hash")


@SETTINGS
@given(st.lists(st.one_of(words, KEEP), min_size=1, max_size=14), JOINERS)
def test_text_without_pii_is_unchanged(values, joiner) -> None:
    text = joiner.join(values)
    stripper = PiiStripper(COLUMNS, scan="redact", key=None)
    assert stripper.apply({"notes": text, "doc": [text]}) == {"notes": text, "doc": [text]}


@SETTINGS
@given(st.lists(PII, min_size=1, max_size=6))
def test_redact_output_is_only_labels(planted) -> None:
    text = " | ".join(value for _, value in planted)
    out = PiiStripper(COLUMNS, scan="redact", key=None).apply({"notes": text})["notes"]
    assert re.fullmatch(r"\[(EMAIL|PHONE|IBAN|CARD|IP)\](?: \| \[(EMAIL|PHONE|IBAN|CARD|IP)\])*", out), out
    labels = re.findall(r"\[(\w+)\]", out)
    expected = [{"email": "EMAIL", "phone": "PHONE", "iban": "IBAN", "card": "CARD", "ip": "IP"}[k] for k, _ in planted]
    assert labels == expected

