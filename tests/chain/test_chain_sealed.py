"""Start blobs sealed with the PII key's derived key: pure unit tests over bytes."""
from __future__ import annotations

import pytest

from shared.chain.sealed import MARK, SealError, derive_key, seal, unseal

CONTENT = b'{"request":{"url":"https://api.example.com/v1/items?email=a@example.org","params":{}}}'


def test_sealed_content_opens_with_the_same_key_only():
    sealed = seal(CONTENT, "the-key")
    assert sealed.startswith(MARK) and b"example.org" not in sealed
    assert unseal(sealed, "the-key") == CONTENT
    with pytest.raises(SealError, match="cannot be opened with this PII key") as info:
        unseal(sealed, "another-key")
    assert "example.org" not in str(info.value)


def test_each_seal_takes_a_fresh_nonce():
    assert seal(CONTENT, "k") != seal(CONTENT, "k")


def test_an_altered_blob_does_not_open():
    sealed = bytearray(seal(CONTENT, "k"))
    sealed[-5] ^= 0x40
    with pytest.raises(SealError, match="another key, or altered"):
        unseal(bytes(sealed), "k")


def test_without_a_key_nothing_is_sealed_and_a_sealed_blob_is_refused():
    assert seal(CONTENT, None) == CONTENT and unseal(CONTENT, None) == CONTENT
    with pytest.raises(SealError, match="is sealed, but no PII key is set"):
        unseal(seal(CONTENT, "k"), None)
    with pytest.raises(SealError, match="is not sealed, but a PII key is set"):
        unseal(CONTENT, "k")


def test_the_derived_key_is_not_the_pii_key():
    assert derive_key("k") != b"k" and len(derive_key("k")) == 32 and derive_key("k") == derive_key("k")
