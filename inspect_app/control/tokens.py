"""Opaque bearer tokens: minted once, stored only as a SHA-256 hash.

Used for personal API tokens, sandbox tokens and client WebSocket tokens. A token is
``<prefix>_<random>``; the prefix says what kind it is, so a leaked one is recognisable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_PREFIX = "insp"
SANDBOX_PREFIX = "sbx"
TOOL_PREFIX = "sbt"  # a sandbox's tool token: git credentials and pull requests, nothing else
CLIENT_PREFIX = "cli"


def mint(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


def display_prefix(token: str) -> str:
    """The first characters of a token, safe to show so a person can tell tokens apart."""
    return token[:12]
