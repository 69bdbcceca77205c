"""Inbox blob names: which ones are refused, how one is shown, and the id a file's rows carry.

A blob name is written by whoever drops the file, so it is hostile input and may hold PII (a file
named after a customer). It is checked before anything reads it, shown only scrubbed by the PII
detectors and escaped (a newline in a log line forges another line), and stored nowhere verbatim:
the ledger holds the shown form, and a keyless table's rows carry a keyed hash of it.
"""
from __future__ import annotations

import hashlib
import unicodedata

from shared.detect.digest import keyed_hash
from shared.detect.redact_message import scrub_text

MAX_NAME = 1024          # Azure Storage's limit on a blob name, in characters
MAX_SHOWN = 200
FILE_ID_PREFIX = "inbox-"
FILE_ID_HEX = 30         # FILE_ID_PREFIX + 30 hex = 36 characters, the width of _kspyder_run_id
_UNSEEN = ("Cc", "Cf", "Zl", "Zp")   # control, format and line/paragraph separator characters


def name_problem(path: str) -> str | None:
    """What makes `path` (`<source>/<model>/<name>`, without the container) unsafe, or None.

    The reason names the problem, never the name: it is shown next to a scrubbed form of it."""
    if not path:
        return "the blob name is empty"
    if len(path) > MAX_NAME:
        return f"the blob name is longer than {MAX_NAME} characters"
    if path.startswith("/"):
        return "the blob name starts with '/'"
    if any(unicodedata.category(c) in _UNSEEN for c in path):
        return "the blob name holds a control character (a newline, a tab, an invisible character)"
    if "\\" in path:
        return "the blob name holds a backslash (storage reads it as '/')"
    segments = path.split("/")
    if any(s in (".", "..") for s in segments):
        return "the blob name has a '.' or '..' segment (a relative path)"
    if any(not s for s in segments):
        return "the blob name has an empty segment ('//' or a trailing '/')"
    return None


def shown_name(name: str) -> str:
    """`name` as logs, errors and the ledger may show it: PII replaced by labels (`[EMAIL]`),
    control characters and backslashes escaped, at most MAX_SHOWN characters."""
    text = scrub_text(name if len(name) <= MAX_NAME else name[:MAX_NAME] + "...")
    escaped = "".join(_escape(c) for c in text)
    return escaped if len(escaped) <= MAX_SHOWN else escaped[:MAX_SHOWN] + "..."


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if unicodedata.category(char) in _UNSEEN:
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def file_id(path: str, key: bytes | None) -> str:
    """A dropped file's id, the same on every drop of the same `<source>/<model>/<name>`: a keyed
    hash (the project's PII key) so that the name cannot be guessed back from it; without a key,
    a plain SHA-256 (still not the name)."""
    digest = keyed_hash(key, path) if key else hashlib.sha256(b"kspyder-inbox\0" + path.encode("utf-8")).hexdigest()
    return FILE_ID_PREFIX + digest[:FILE_ID_HEX]
