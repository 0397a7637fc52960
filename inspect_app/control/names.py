"""Validation of names that reach git or a shell: branch names."""

from __future__ import annotations

import re

_BRANCH_RE = re.compile(r"^(?!-)(?!/)(?!.*\.\.)(?!.*//)(?!.*@\{)[A-Za-z0-9._/-]{1,255}(?<!\.lock)(?<!/)(?<!\.)$")


def valid_branch(name: str) -> bool:
    """A branch name git accepts and a shell cannot misread (validated before any git call)."""
    return bool(_BRANCH_RE.match(name))
