"""The exception tree of Inspect.

    InspectError                 base of everything we raise on purpose
    ├── ConfigError              bad or missing configuration; start-up stops with one line
    ├── NotFound                 a resource does not exist (or is not visible to the caller)  → 404
    ├── Unauthorized             no or bad credentials                                       → 401
    ├── Forbidden                authenticated, but not allowed                              → 403
    ├── InvalidInput             the request is well-formed but its values are not acceptable → 422
    └── Conflict                 the request clashes with the current state                   → 409

Third-party errors are translated into these at the boundary (``raise ... from exc``); the API maps
them to HTTP statuses in one handler (``inspect_app.api.errors``).
"""

from __future__ import annotations


class InspectError(Exception):
    """Base class. ``code`` is a stable machine-readable identifier for API clients."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class ConfigError(InspectError):
    code = "config_error"


class NotFound(InspectError):
    code = "not_found"
    status = 404


class Unauthorized(InspectError):
    code = "unauthorized"
    status = 401


class Forbidden(InspectError):
    code = "forbidden"
    status = 403


class InvalidInput(InspectError):
    code = "invalid_input"
    status = 422


class Conflict(InspectError):
    code = "conflict"
    status = 409
