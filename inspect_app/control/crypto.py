"""AES-256-GCM encryption for secrets and OAuth tokens at rest (stored as nonce || ciphertext)."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inspect_app.errors import InspectError

NONCE_BYTES = 12


class Cipher:
    """Encrypts with one 32-byte key. ``associated`` binds a ciphertext to its row (e.g. the key name)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, associated: str = "") -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext.encode(), associated.encode())

    def decrypt(self, blob: bytes, *, associated: str = "") -> str:
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated.encode()).decode()
        except InvalidTag as exc:
            raise InspectError("cannot decrypt: wrong INSPECT_SECRET_KEY or tampered data") from exc
