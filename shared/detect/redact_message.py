"""The one gate between data and diagnostics: text copied from a response body, a URL, a database
message or an exception goes through here before it is written to a log, an error, the ledger or
a queue message.

Errors are meant to carry identifiers only, but their text is assembled from places that hold data
(an API's own error message, a next link's query, a driver quoting the offending value), so every
such text is scrubbed by the same free-text detectors as the records (e-mails, phones, IBANs, cards,
IP addresses), URLs lose their query values and any user:password@, and excerpts are kept short.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from shared.detect.scrub import scrubbers

EXCERPT_LIMIT = 120   # characters of an API's or a database's own message worth keeping
MESSAGE_LIMIT = 2000  # an error message longer than this carries data, not a diagnosis
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>()\[\]{}]+")
_URL_TAIL = ".,;:"    # sentence punctuation after a URL is not part of it
_scrub: Callable[[str], str] | None = None


def _scrubber() -> Callable[[str], str]:
    global _scrub
    if _scrub is None:   # built on first use: the detectors compile their patterns
        _scrub = scrubbers((), None)["redact"]
    return _scrub


def scrub_text(text: str) -> str:
    """`text` with every PII span the detectors find replaced by its label ([EMAIL], [IBAN]...)."""
    return _scrubber()(text)


def safe_url(url: str) -> str:
    """A URL as diagnostics may show it: scheme, host and port, the path scrubbed, the query's
    parameter names without their values, no user:password@ and no fragment."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        names = list(dict.fromkeys(name for name, _ in parse_qsl(parts.query, keep_blank_values=True)))
    except ValueError:   # not a URL after all (a bracket out of place): say only that there was one
        return "(a URL)"
    query = "&".join(f"{scrub_text(name)}=…" for name in names)
    return urlunsplit((parts.scheme, netloc, scrub_text(parts.path), query, ""))


def scrub_message(text: str) -> str:
    """An error or log message made safe to write: URLs reduced by `safe_url`, everything else
    scrubbed by the detectors (the hosts of the URLs stay readable), cut at `MESSAGE_LIMIT`."""
    text = _cut(str(text), MESSAGE_LIMIT)
    pieces: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_URL_TAIL)
        pieces.append(scrub_text(text[position:match.start()]))
        pieces.append(safe_url(url))
        position = match.start() + len(url)
    pieces.append(scrub_text(text[position:]))
    return "".join(pieces)


def safe_excerpt(text: Any, limit: int = EXCERPT_LIMIT) -> str:
    """A short, scrubbed, one-line excerpt of a message a server or a driver wrote (an API's error
    message, a database's first line): its gist, never the values it quotes."""
    line = scrub_message(" ".join(_cut(str(text), 4 * limit).split()))   # scrubbed whole, then cut:
    return line if len(line) <= limit else line[: limit - 3] + "..."    # a cut never splits a value


def _cut(text: str, limit: int) -> str:
    """`text` cut at `limit` characters and back to the last whitespace, so that no value is left
    half there for the detectors to miss (half an e-mail is not an e-mail to them)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    return (head[:space] if space > 0 else "") + " ..."


def scrub_strings(value: Any) -> Any:
    """Every string in a JSON-like value (mappings, lists) passed through `scrub_message`: what a
    run summary or a ledger record holds before it is stored."""
    if isinstance(value, str):
        return scrub_message(value)
    if isinstance(value, dict):
        return {k: scrub_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_strings(v) for v in value]
    return value
