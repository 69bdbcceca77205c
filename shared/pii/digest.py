"""The keyed hash every PII rule and scan token uses, in a module of its own: the scan process
(`scan_process.py`) imports it without the manifest models."""
from __future__ import annotations

import hmac


def keyed_hash(key: bytes, text: str) -> str:
    return hmac.digest(key, text.encode("utf-8"), "sha256").hex()
