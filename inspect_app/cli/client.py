"""The public API as the terminal client uses it: bounded requests, errors as the server says them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_S = 30.0


class CliError(Exception):
    """Something to tell the person (the server's own words where it gave some)."""


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    cursor: int
    more: bool


class Api:
    def __init__(self, url: str, token: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_S,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code == 401:
            raise CliError("the server refused the token: run `login` again")
        if not response.is_success:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300] or response.reason_phrase
            raise CliError(f"{message} (HTTP {response.status_code})")
        return response.json()

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/api/me")

    def repositories(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/repositories")

    def repository(self, name: str) -> dict[str, Any]:
        """A registered repository by name (``acme/widgets``) or id."""
        found = self.repositories()
        wanted = [r for r in found if r["name"].lower() == name.lower() or str(r["id"]) == name]
        if not wanted:
            names = ", ".join(sorted(r["name"] for r in found)) or "none"
            raise CliError(f"no repository {name!r} (registered: {names})")
        return wanted[0]

    def sessions(self, *, mine: bool = False, limit: int = 20) -> list[dict[str, Any]]:
        return self._call("GET", "/api/sessions", params={"mine": mine, "limit": limit})["sessions"]

    def session(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/sessions/{session_id}")

    def create_session(self, repository_id: int, *, model: str | None, branch: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"repository_id": repository_id}
        if model:
            body["model"] = model
        if branch:
            body["branch"] = branch
        return self._call("POST", "/api/sessions", json=body)

    def prompt(self, session_id: str, content: str) -> str:
        return self._call("POST", f"/api/sessions/{session_id}/prompts", json={"content": content})["message_id"]

    def stop(self, session_id: str) -> None:
        self._call("POST", f"/api/sessions/{session_id}/stop")

    def changes(self, session_id: str, cursor: int) -> Page:
        found = self._call("GET", f"/api/sessions/{session_id}/events", params={"cursor": cursor, "limit": 200})
        return Page(events=found["events"], cursor=int(found["cursor"]), more=bool(found.get("more")))

    def follow(self, session_id: str, cursor: int, *, pause: Any) -> Iterator[dict[str, Any]]:
        """Every row of the timeline that changes from ``cursor`` on, in its latest version, for as
        long as the caller reads (``pause()`` between empty polls)."""
        while True:
            page = self.changes(session_id, cursor)
            cursor = page.cursor
            yield from page.events
            if not page.more:
                pause()

    def web_link(self, session_id: str) -> str:
        return f"{self.url}/sessions/{session_id}"
