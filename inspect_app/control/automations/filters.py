"""Which inbound webhook bodies start a run: every filter must hold.

A filter names a dotted path into the JSON body (``pull_request.base.ref``; a list is indexed by a
number, ``commits.0.id``) and what the value there must be: ``equals`` one value, or be ``in`` a list.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_FILTERS = 20
_MISSING = object()


class Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=200, pattern=r"^[^.\s]+(\.[^.\s]+)*$")
    equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in", max_length=100)

    @model_validator(mode="after")
    def _one_test(self) -> Filter:
        if (self.equals is None) == (self.in_ is None):
            raise ValueError("a filter has either 'equals' or 'in'")
        return self


def lookup(body: Any, path: str) -> Any:
    """The value at ``path`` in ``body``, or ``_MISSING``."""
    value = body
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def mismatch(body: Any, filters: list[Filter]) -> str | None:
    """Why ``body`` does not match (the first filter that fails), or None when it matches."""
    for rule in filters:
        value = lookup(body, rule.path)
        if value is _MISSING:
            return f"the body has no {rule.path}"
        if rule.in_ is not None and value not in rule.in_:
            return f"{rule.path} is {value!r}, not one of {rule.in_!r}"
        if rule.equals is not None and value != rule.equals:
            return f"{rule.path} is {value!r}, not {rule.equals!r}"
    return None
