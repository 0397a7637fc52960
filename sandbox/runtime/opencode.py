"""HTTP client for the OpenCode server (``opencode serve``): sessions, prompts, abort, events.

Only transport: no prompt policy here (that is ``agent.py``). Every request has a timeout except the
event stream, which is long-lived by design and read with a keepalive-sized read timeout.
"""

from __future__ import annotations

import itertools
import json
import secrets
import string
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

REQUEST_TIMEOUT_S = 30.0
EVENT_READ_TIMEOUT_S = 35.0  # OpenCode sends server.heartbeat every 10 s


class OpenCodeError(RuntimeError):
    pass


_counter = itertools.count()
_BASE62 = string.digits + string.ascii_letters


def message_id() -> str:
    """A user-message id in OpenCode's own ascending form (``msg_`` + 12 hex of time + 14 random).

    Choosing the id ourselves lets the translator tell the assistant messages answering THIS prompt
    (``parentID`` equals it) from late events of an earlier, aborted one.
    """
    stamp = (int(time.time() * 1000) * 0x1000 + next(_counter) % 0x1000) & 0xFFFFFFFFFFFF
    return f"msg_{stamp:012x}" + "".join(secrets.choice(_BASE62) for _ in range(14))


class OpenCodeClient:
    def __init__(self, *, base_url: str, password: str, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            auth=httpx.BasicAuth("opencode", password),
            timeout=REQUEST_TIMEOUT_S,
            transport=transport,
        )

    async def healthy(self, timeout: float = 1.0) -> bool:
        try:
            response = await self._http.get("/global/health", timeout=timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and bool(response.json().get("healthy"))

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OpenCodeError(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise OpenCodeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    async def create_session(self, title: str | None = None) -> str:
        body = {"title": title} if title else {}
        return str((await self._request("POST", "/session", json=body)).json()["id"])

    async def session_exists(self, session_id: str) -> bool:
        try:
            await self._request("GET", f"/session/{session_id}")
        except OpenCodeError:
            return False
        return True

    async def warm(self) -> None:
        """Ask for what the first prompt would otherwise load (config, providers, agents)."""
        for path in ("/config", "/provider", "/agent"):
            await self._request("GET", path)

    async def warm_workspace(self) -> None:
        """Boot OpenCode's services for the workspace (its file watcher and the rest it starts per
        directory), which otherwise the first prompt boots: ~0.55 s between Send and the model being
        asked, measured. Listing the workspace root is the cheapest request that boots them."""
        await self._request("GET", "/file", params={"path": "."})

    async def prompt_async(
        self,
        session_id: str,
        text: str,
        *,
        message_id: str,
        model: str = "",
        system: str | None = None,
        agent: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"messageID": message_id, "parts": [{"type": "text", "text": text}]}
        if agent:
            body["agent"] = agent  # e.g. "plan": OpenCode's planning agent
        if "/" in model:
            provider, _, model_id = model.partition("/")
            body["model"] = {"providerID": provider, "modelID": model_id}
        if system:
            body["system"] = system
        await self._request("POST", f"/session/{session_id}/prompt_async", json=body)

    async def reply_permission(self, request_id: str, reply: str = "once") -> None:
        await self._request("POST", f"/permission/{request_id}/reply", json={"reply": reply})

    async def abort(self, session_id: str) -> None:
        await self._request("POST", f"/session/{session_id}/abort", timeout=10)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The instance event stream (SSE), one decoded event at a time."""
        timeout = httpx.Timeout(REQUEST_TIMEOUT_S, read=EVENT_READ_TIMEOUT_S)
        async with self._http.stream("GET", "/event", timeout=timeout) as response:
            if response.status_code != 200:
                raise OpenCodeError(f"GET /event: HTTP {response.status_code}")
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif not line and data:
                    try:
                        event = json.loads("\n".join(data))
                    except json.JSONDecodeError:
                        event = None
                    data.clear()
                    if isinstance(event, dict):
                        yield event

    async def close(self) -> None:
        await self._http.aclose()
