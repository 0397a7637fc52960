"""Critical events waiting for the control plane's acknowledgement.

Invariants:
- every critical message gets a fresh ``ack_id`` once, when it is first recorded;
- a recorded message stays until ``ack(ack_id)``; ``pending()`` lists them in recording order;
- nothing here does I/O: the bridge sends, re-sends after a reconnect, and calls ``ack``.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import TypeVar

from pydantic import BaseModel

from sandbox.protocol import CRITICAL_TYPES

M = TypeVar("M", bound=BaseModel)


def is_critical(message: BaseModel) -> bool:
    kind = getattr(message, "type", "")
    # an answer to a malformed message is informational; every other error must arrive
    if kind == "error" and getattr(message, "code", "") == "bad_message":
        return False
    return kind in CRITICAL_TYPES


class AckBuffer:
    def __init__(self, limit: int = 1000) -> None:
        self._pending: OrderedDict[str, BaseModel] = OrderedDict()
        self._limit = limit

    def record(self, message: M) -> M:
        """Stamp a critical message with an ack id and keep it until acknowledged."""
        stamped = message.model_copy(update={"ack_id": f"ack_{secrets.token_hex(8)}"})
        self._pending[stamped.ack_id] = stamped  # type: ignore[attr-defined]
        while len(self._pending) > self._limit:  # a control plane that never acks must not grow us forever
            self._pending.popitem(last=False)
        return stamped

    def ack(self, ack_id: str) -> bool:
        return self._pending.pop(ack_id, None) is not None

    def pending(self) -> list[BaseModel]:
        return list(self._pending.values())

    def __contains__(self, ack_id: object) -> bool:
        return ack_id in self._pending

    def __len__(self) -> int:
        return len(self._pending)
