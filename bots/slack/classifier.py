"""The repository classifier: asks the default model which repository a Slack message is about.

It calls the OpenAI-compatible endpoint configured for the agents (``INSPECT_LLM_BASE_URL``), with
a bounded timeout; without one (or when the call fails) it answers "unknown" and the bot asks the
person instead. Parsing and the decision rules live in ``routing.py``.
"""

from __future__ import annotations

import json
import logging

import httpx

from bots.slack.routing import Candidate, Decision, from_model

log = logging.getLogger(__name__)

TIMEOUT_S = 20.0
SYSTEM = (
    "You route requests from a team chat to the code repository they are about. Answer with JSON only: "
    '{"repository": "<one of the names, or unknown>", "confidence": <0 to 1>, "alternatives": ["<names>"]}.'
)


class Classifier:
    def __init__(self, *, base_url: str, api_key: str, model: str) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions" if base_url else ""
        self._api_key = api_key
        self._model = model

    async def classify(self, *, message: str, thread: list[str], channel: str, candidates: list[Candidate]) -> Decision:
        if not self._url:
            return Decision(None, "ask")
        listing = "\n".join(f"- {c.name}: {c.description or 'no description'}" for c in candidates)
        context = "\n".join(thread[-10:]) or "(none)"
        user = (
            f"Channel: #{channel}\nRepositories:\n{listing}\n\nEarlier in the thread:\n{context}\n\nRequest:\n{message}"
        )
        body = {
            "model": self._model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            "temperature": 0,
            "stream": False,
        }
        headers = {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
                response = await client.post(self._url, json=body, headers=headers)
                response.raise_for_status()
                answer = response.json()["choices"][0]["message"]["content"] or ""
        except (httpx.HTTPError, KeyError, IndexError, ValueError, json.JSONDecodeError) as exc:
            log.warning("repository classifier unavailable: %s", exc)
            return Decision(None, "ask")
        return from_model(answer, candidates)
