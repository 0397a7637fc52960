"""Media artifacts (screenshots): images stored under unguessable keys and served at public URLs.

A pull request's body embeds a screenshot by URL, and GitHub (through its image proxy) and Slack
fetch it without signing in: the URL is the only secret, so a key is 32 random bytes, and the route
serving it (``api/media.py``) asks for no credentials.

Invariants:
- Only PNG and JPEG are stored, and only when the bytes start with that format's signature: what is
  served as ``image/png`` is a PNG, never HTML or script someone labelled as one.
- A key is ``<43 urlsafe characters>.<png|jpg>``; anything else is refused before a backend sees it
  (no path traversal, no other objects in the bucket). The content type is the key's extension's.
- A stored object is never rewritten: every put makes a new key.
- Backends block (file and S3 I/O); ``MediaStore`` runs them in a worker thread, so its callers
  simply await it on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Protocol

from inspect_app.errors import InvalidInput
from inspect_app.files import FILE_MODE, private_dir

MAX_MEDIA_BYTES = 8 * 1024 * 1024  # a full-page screenshot at 2x is a few MiB

# content type -> (key extension, the format's leading signature)
FORMATS: dict[str, tuple[str, bytes]] = {
    "image/png": ("png", b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": ("jpg", b"\xff\xd8\xff"),
}
CONTENT_TYPES = {extension: content_type for content_type, (extension, _) in FORMATS.items()}
KEY = re.compile(r"[A-Za-z0-9_-]{43}\.(png|jpg)")  # token_urlsafe(32) is 43 characters


class MediaBackend(Protocol):
    """Where the bytes live. Blocking; called off the event loop. Keys are already validated."""

    def write(self, key: str, data: bytes, content_type: str) -> None: ...

    def read(self, key: str) -> bytes | None:
        """The stored bytes, or None when there is no such object."""
        ...


def content_type_of(key: str) -> str | None:
    """The content type a well-formed key serves as, or None for any other string (pure)."""
    match = KEY.fullmatch(key)  # fullmatch: ``$`` would let a trailing newline through
    return CONTENT_TYPES[match.group(1)] if match else None


def check_image(data: bytes, content_type: str) -> str:
    """The key extension for ``data``, if it is an acceptable image of ``content_type`` (pure)."""
    if content_type not in FORMATS:
        raise InvalidInput(f"media must be one of {', '.join(FORMATS)}, not {content_type!r}", code="media_type")
    if len(data) > MAX_MEDIA_BYTES:
        raise InvalidInput(f"media is over the limit of {MAX_MEDIA_BYTES} bytes", code="media_too_large")
    extension, signature = FORMATS[content_type]
    if not data.startswith(signature):
        raise InvalidInput(f"the bytes are not a {content_type} image", code="media_type")
    return extension


class MediaStore:
    """Puts images under new unguessable keys, gets them back, and names their public URLs."""

    def __init__(self, *, backend: MediaBackend, public_url: str) -> None:
        self.backend = backend
        self._public_url = public_url.rstrip("/")

    async def put(self, data: bytes, content_type: str) -> str:
        """Store an image; its new key. Raises InvalidInput for anything but a PNG or JPEG within the limit."""
        key = f"{secrets.token_urlsafe(32)}.{check_image(data, content_type)}"
        await asyncio.to_thread(self.backend.write, key, data, content_type)
        return key

    async def get(self, key: str) -> tuple[bytes, str] | None:
        """The image's bytes and content type, or None for an unknown or malformed key."""
        content_type = content_type_of(key)
        if content_type is None:
            return None
        data = await asyncio.to_thread(self.backend.read, key)
        return None if data is None else (data, content_type)

    def url(self, key: str) -> str:
        """Where anyone (GitHub's image proxy, Slack, a browser) fetches the image, without signing in."""
        if content_type_of(key) is None:
            raise InvalidInput(f"{key!r} is not a media key")
        return f"{self._public_url}/media/{key}"


class LocalMedia:
    """Files in one private directory (0700, files 0600), each written whole or not at all."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, key: str, data: bytes, content_type: str) -> None:
        private_dir(self.root)
        # a temporary file renamed into place: a reader never sees half an image, and a crash
        # leaves a stray temporary file, never a truncated object under a real key
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".put-")  # mkstemp creates it 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, FILE_MODE)  # noqa: PTH101 - the path is a str from mkstemp
            os.replace(temporary, self.root / key)  # noqa: PTH105
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
