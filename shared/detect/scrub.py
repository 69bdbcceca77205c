"""`pii_scan`: replace the PII found in free text with a label, or a label plus a keyed hash.

The hashed form keeps a little analytic value (the same e-mail gives the same token across records
and runs) without the value itself; 16 hex characters are plenty to tell values apart.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shared.detect.detectors import Scanner

Transform = Callable[[Any], Any]   # rules.Transform, not imported: see scan_process.py

_LABELS = {"email": "EMAIL", "phone": "PHONE", "iban": "IBAN", "card": "CARD",
           "ipv4": "IP", "ipv6": "IP", "term": "TERM", "national_id": "NATIONAL_ID"}
# What a column's name can add to the scan (detectors.Scanner's `column`): a scan mode for such a
# column is "<mode>:<context>", e.g. "redact:phone"
CONTEXTS = ("phone", "national_id")


def text_scrubber(scanner: Scanner, mode: str, key: bytes | None) -> Callable[[str], str]:
    find = scanner.spans   # tuples, not Detection objects: this runs for every scanned value
    if mode == "hash":
        if not key:
            raise ValueError("pii_scan hash needs a key")
        from shared.detect.digest import keyed_hash  # here: OpenSSL weighs on a scan process that only redacts

        def token(span: str, kind: str) -> str:
            return f"[{_LABELS[kind]}:{keyed_hash(key, span)[:16]}]"
    else:
        def token(span: str, kind: str) -> str:
            return f"[{_LABELS[kind]}]"

    def scrub(text: str) -> str:
        found = find(text)
        if not found:
            return text
        pieces: list[str] = []
        position = 0
        for start, end, kind in found:
            pieces.append(text[position:start])
            pieces.append(token(text[start:end], kind))
            position = end
        pieces.append(text[position:])
        return "".join(pieces)
    return scrub


def scrubbers(terms: Sequence[str], key: bytes | None) -> dict[str, Callable[[str], str]]:
    """The free-text scrubbers by scan mode (`hash` only with a key), plain and for each column
    context ("redact:phone"): what a stripper and the scan process (`scan_child.py`) both scan
    with, so that the two give the same text."""
    found: dict[str, Callable[[str], str]] = {}
    for context in (None, *CONTEXTS):
        scanner = Scanner(terms, context)
        for mode in ("redact", "hash"):
            if mode != "hash" or key:
                found[mode if context is None else f"{mode}:{context}"] = text_scrubber(scanner, mode, key)
    return found


def text_column(scrub: Callable[[str], str]) -> Transform:
    def apply(value: Any) -> Any:
        return scrub(value) if isinstance(value, str) else value
    return apply


def json_column(scrub: Callable[[str], str]) -> Transform:
    """Scrub every string inside a JSON value (not dict keys: those are schema, not data)."""
    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value
    return walk
