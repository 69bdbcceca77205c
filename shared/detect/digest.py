"""The keyed hash every PII rule and scan token uses, in a module of its own: the scan process
(`scan_process.py`) imports it without the manifest models."""
from __future__ import annotations

import hmac


def keyed_hash(key: bytes, text: str | bytes) -> str:
    """HMAC-SHA256 of the text's UTF-8 bytes, or of binary data as it is."""
    return hmac.digest(key, text if isinstance(text, bytes) else text.encode("utf-8"), "sha256").hex()
