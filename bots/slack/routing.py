"""Which repository a Slack message means: rules first, then the model, then the person.

1. only one repository → it;
2. a keyword or alias of a repository (Settings) appears in the message → it;
3. the channel is associated with a repository → it;
4. otherwise the classifier asks the default model (message, thread context, channel name and each
   repository's description) for a repository or "unknown" with a confidence; below
   ``CONFIDENT`` (or unknown) the bot asks with a picker.

The rules and the parsing of the model's answer are pure; the model call is in ``classifier.py``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

CONFIDENT = 0.7


@dataclass(frozen=True)
class Candidate:
    id: int
    name: str
    description: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    repository_id: int | None  # None: ask the person
    reason: str  # "only" | "keyword" | "channel" | "model" | "ask"
    guesses: tuple[int, ...] = ()  # best first, for the picker


def by_rules(text: str, candidates: list[Candidate], channel_repository: int | None) -> Decision | None:
    """A decision without the model, or None when the rules cannot tell."""
    if len(candidates) == 1:
        return Decision(candidates[0].id, "only")
    words = text.lower()
    hits = [
        c.id
        for c in candidates
        if any(re.search(rf"(?<![\w-]){re.escape(k.lower())}(?![\w-])", words) for k in (*c.keywords, c.name) if k)
    ]
    if len(set(hits)) == 1:
        return Decision(hits[0], "keyword")
    if channel_repository is not None and any(c.id == channel_repository for c in candidates):
        return Decision(channel_repository, "channel")
    return None


def from_model(answer: str, candidates: list[Candidate]) -> Decision:
    """The classifier's JSON answer (``{"repository": name|"unknown", "confidence": 0..1,
    "alternatives": [names]}``), checked against the candidates. Anything odd means: ask."""
    match = re.search(r"\{.*\}", answer, re.DOTALL)
    try:
        parsed = json.loads(match.group(0)) if match else {}
    except ValueError:
        parsed = {}
    by_name = {c.name.lower(): c.id for c in candidates}
    named = [str(parsed.get("repository", "")), *[str(a) for a in parsed.get("alternatives", []) or []]]
    guesses = tuple(dict.fromkeys(by_name[n.lower()] for n in named if n.lower() in by_name))
    try:
        confidence = float(parsed.get("confidence", 0))
    except (TypeError, ValueError):
        confidence = 0.0
    chosen = by_name.get(str(parsed.get("repository", "")).lower())
    if chosen is not None and confidence >= CONFIDENT:
        return Decision(chosen, "model", guesses)
    return Decision(None, "ask", guesses)
