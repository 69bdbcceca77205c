"""Start blobs sealed with a key derived from the PII key.

A start blob holds what the next page of a link, cursor or SQL keyset model starts from: a next link
or cursor the API wrote, or the last key of a SQL chunk, any of which may carry PII. It has to wait
in storage between two Fetch invocations, so it is encrypted (AES-GCM) with a key derived from
`pii.key` (HKDF, its own label: the hash rule's key is never used as is). Without a PII key there is
nothing to derive from and the blob is stored as it is: Azure deployments always have one
(`infra/hooks/postprovision.sh` creates it), and docs/functions.md says so.
"""
from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MARK = b"KSP1"          # a sealed blob starts with this; a plain one starts with "{" (JSON)
_INFO = b"kspyder chain start blobs v1"
_NONCE = 12


class SealError(ValueError):
    """A sealed blob that cannot be opened: another key, or altered. Names nothing inside it."""


def derive_key(pii_key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(pii_key.encode("utf-8"))


def seal(content: bytes, pii_key: str | None) -> bytes:
    """`content` encrypted under the PII key's derived key (a fresh nonce each time), or as it is
    without a key."""
    if not pii_key:
        return content
    nonce = os.urandom(_NONCE)
    return MARK + nonce + AESGCM(derive_key(pii_key)).encrypt(nonce, content, MARK)


def unseal(data: bytes, pii_key: str | None) -> bytes:
    """The content `seal` was given. A plain blob is returned as it is only when no key is set: with a
    key, every start blob must be sealed, so a plain one was not written by this app."""
    if not data.startswith(MARK):
        if pii_key:
            raise SealError("is not sealed, but a PII key is set")
        return data
    if not pii_key:
        raise SealError("is sealed, but no PII key is set")
    nonce, sealed = data[len(MARK):len(MARK) + _NONCE], data[len(MARK) + _NONCE:]
    try:
        return AESGCM(derive_key(pii_key)).decrypt(nonce, sealed, MARK)
    except InvalidTag:
        raise SealError("cannot be opened with this PII key (another key, or altered)") from None
