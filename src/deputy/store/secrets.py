"""Secrets at rest (provider API keys, webhook secrets): Fernet (AES-128-CBC + HMAC-SHA256)
under a key derived from DEPUTY_SECRET_KEY with HKDF. Ciphertexts carry a version prefix so
the scheme can change without guessing."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "v1:"


class SecretDecryptionFailed(RuntimeError):
    """A stored secret cannot be decrypted: DEPUTY_SECRET_KEY changed, or the value is damaged."""


class SecretBox:
    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"deputy-secrets", info=b"fernet-v1"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            raise SecretDecryptionFailed("unknown secret format")
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise SecretDecryptionFailed(
                "a stored secret cannot be decrypted: was DEPUTY_SECRET_KEY changed?"
            ) from exc
