"""Blob-style storage shared by the embedded mode and the Azure functions: the run ledger (and,
with the queue chain, raw pages) go through this interface, so both modes share one code path."""
from shared.storage.base import BlobStore
from shared.storage.local import LocalBlobStore

__all__ = ["BlobStore", "LocalBlobStore"]
