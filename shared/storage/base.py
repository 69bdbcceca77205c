"""The storage interface: a flat namespace of named blobs inside containers.

Small on purpose: it is what Azure Blob Storage offers cheaply (with `if_none_match='*'` for the
conditional create that makes "exactly once" decisions possible), and what a local folder can do
atomically.
"""
from __future__ import annotations

from typing import Protocol


class BlobStore(Protocol):
    def put(self, container: str, name: str, data: bytes) -> None:
        """Write, replacing any previous content (readers see the old or the new blob, never a mix)."""

    def create(self, container: str, name: str, data: bytes) -> bool:
        """Write only if absent; True when this call created it. Two racing callers: exactly one wins."""

    def get(self, container: str, name: str) -> bytes | None:
        """The content, or None when absent."""

    def list(self, container: str, prefix: str = "") -> list[str]:
        """Names under `prefix`, sorted."""

    def delete(self, container: str, name: str) -> None:
        """Remove if present."""
