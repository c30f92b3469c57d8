from __future__ import annotations

import pytest

from deputy.store.secrets import SecretBox, SecretDecryptionFailed


def test_roundtrip_hides_the_plaintext() -> None:
    box = SecretBox("k" * 40)
    stored = box.encrypt("sk-live-123")
    assert "sk-live-123" not in stored
    assert stored != box.encrypt("sk-live-123")  # random IV
    assert box.decrypt(stored) == "sk-live-123"


def test_another_key_or_tampering_is_refused() -> None:
    stored = SecretBox("k" * 40).encrypt("sk-live-123")
    with pytest.raises(SecretDecryptionFailed, match="DEPUTY_SECRET_KEY"):
        SecretBox("j" * 40).decrypt(stored)
    with pytest.raises(SecretDecryptionFailed):
        SecretBox("k" * 40).decrypt(stored[:-4] + "AAAA")
    with pytest.raises(SecretDecryptionFailed):
        SecretBox("k" * 40).decrypt("plaintext")
