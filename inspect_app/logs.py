"""The server's own log lines: each names the replica that wrote it and, where one is at hand, the
session it is about — so the logs of several replicas can be merged and followed per session.

Reflex and Granian configure their own loggers; ours (``inspect_app``, ``bots``, ``sandbox``) get one
handler here, on stderr, and no longer fall through to Python's last-resort handler (which printed
warnings only). ``session_context`` is set where work for one session starts (a sandbox's message,
a prompt, a stop); tasks started from there inherit it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
OURS = ("inspect_app", "bots", "sandbox")
FORMAT = "%(asctime)s %(levelname)s [%(replica)s] %(name)s: %(session)s%(message)s"

session_context: contextvars.ContextVar[str] = contextvars.ContextVar("log_session", default="")


class _Context(logging.Filter):
    def __init__(self, replica_id: str) -> None:
        super().__init__()
        self._replica = replica_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.replica = self._replica
        session = session_context.get()
        record.session = f"session={session} " if session else ""
        return True


def configure(replica_id: str, level: str) -> None:
    """Once per server process (again: replaced, not doubled)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_Context(replica_id))
    handler.set_name("inspect")
    for name in OURS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "inspect"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


@contextlib.contextmanager
def about(session_id: str) -> Iterator[None]:
    """Log lines written inside (and by tasks started inside) name ``session_id``."""
    token = session_context.set(session_id)
    try:
        yield
    finally:
        session_context.reset(token)


def about_session(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """``about`` the ``session_id`` a coroutine method is called with (as a keyword)."""

    @functools.wraps(method)
    async def logged(*args: P.args, **kwargs: P.kwargs) -> R:
        with about(str(kwargs.get("session_id", ""))):
            return await method(*args, **kwargs)

    return logged
