"""Checks on text people send: no NUL bytes (PostgreSQL, git and paths cannot take them).

Used by the API's request bodies (a pydantic validator) and by control functions that the UI calls
directly, so a NUL anywhere is a 422 with a reason instead of a database or subprocess error (500).
"""

from __future__ import annotations

from typing import Any

from inspect_app.errors import InvalidInput

NUL_MESSAGE = "NUL characters are not accepted"


def has_nul(value: Any) -> bool:
    """Whether a string, or any key or string inside nested lists and dicts, holds a NUL."""
    pending = [value]  # a loop, not recursion: a deeply nested body must not overflow the stack
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def refuse_nul(field: str, value: Any) -> None:
    if has_nul(value):
        raise InvalidInput(f"{field}: {NUL_MESSAGE}", code="nul_character")
