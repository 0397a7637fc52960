from __future__ import annotations

import os

import pytest

from inspect_app.control.crypto import Cipher
from inspect_app.errors import InspectError


def test_round_trip_and_fresh_nonce() -> None:
    cipher = Cipher(os.urandom(32))
    a = cipher.encrypt("ghp_secret", associated="GITHUB_TOKEN")
    b = cipher.encrypt("ghp_secret", associated="GITHUB_TOKEN")
    assert a != b
    assert b"ghp_secret" not in a
    assert cipher.decrypt(a, associated="GITHUB_TOKEN") == "ghp_secret"


def test_wrong_key_or_row_is_refused() -> None:
    blob = Cipher(os.urandom(32)).encrypt("value", associated="A")
    with pytest.raises(InspectError, match="cannot decrypt"):
        Cipher(os.urandom(32)).decrypt(blob, associated="A")
    cipher = Cipher(os.urandom(32))
    blob = cipher.encrypt("value", associated="A")
    with pytest.raises(InspectError):
        cipher.decrypt(blob, associated="B")
