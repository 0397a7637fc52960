"""MCP servers and skills: what an admin gives the agents of every repository or of one, checked
here (pure) and turned into the sandbox's share of OpenCode's config.

- ``mcp_local``: ``{"command": ["python3", "tools/mcp.py"], "environment": {"TOKEN": {"secret": "KEY"}}}``,
  a command OpenCode starts in the sandbox (relative paths are the repository's);
- ``mcp_remote``: ``{"url": "https://mcp.example.com/mcp", "headers": {"Authorization": {"secret": "KEY"}}}``,
  whose host joins the repository's egress allowlist;
- ``skill``: ``{"content": "When you change the API, ..."}``, named instructions the agent reads.

A value is a plain string or a reference to a secret (``{"secret": "KEY"}``, the repository's or a
global one). A reference is never resolved into the config: the config names an environment
variable (``{env:MCP_SECRET_1}``, which OpenCode fills in when it reads its config) and the value
travels with the sandbox's other secrets. A server whose secret is missing is left out, and said so.
A repository's extension replaces a global one of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from inspect_app.errors import InvalidInput

KINDS = ("mcp_local", "mcp_remote", "skill")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
MAX_SKILL_CHARS = 20_000


def check(kind: str, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The config as stored, or InvalidInput saying what is wrong."""
    if kind not in KINDS:
        raise InvalidInput(f"kind is one of {', '.join(KINDS)}", code="bad_extension")
    if not _NAME.match(name):
        raise InvalidInput("a name is 1-40 of a-z, 0-9, _ and -, starting with a letter or digit", code="bad_extension")
    if kind == "skill":
        content = config.get("content")
        if not isinstance(content, str) or not content.strip() or len(content) > MAX_SKILL_CHARS:
            raise InvalidInput(f"a skill's content is text of 1-{MAX_SKILL_CHARS} characters", code="bad_extension")
        return {"content": content}
    if kind == "mcp_local":
        command = config.get("command")
        if not (isinstance(command, list) and 0 < len(command) <= 20 and all(_short(c) for c in command)):
            raise InvalidInput("a local MCP server's command is a list of 1-20 arguments", code="bad_extension")
        return {"command": list(command), "environment": _values(config.get("environment"), "environment")}
    url = config.get("url")
    parsed = urlparse(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput("a remote MCP server's url is an http(s) URL", code="bad_extension")
    return {"url": url, "headers": _values(config.get("headers"), "headers")}


def _short(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 1000 and "\x00" not in value


def _values(found: object, what: str) -> dict[str, Any]:
    if found is None:
        return {}
    if not isinstance(found, Mapping) or len(found) > 30:
        raise InvalidInput(f"{what} maps names to values (at most 30)", code="bad_extension")
    out: dict[str, Any] = {}
    for key, value in found.items():
        if not isinstance(key, str) or not _VARIABLE.match(key):
            raise InvalidInput(f"{what}: {key!r} is not a name", code="bad_extension")
        if isinstance(value, Mapping) and set(value) == {"secret"} and isinstance(value["secret"], str):
            out[key] = {"secret": value["secret"]}
        elif _short(value):
            out[key] = value
        else:
            raise InvalidInput(f'{what}.{key}: a string or {{"secret": "KEY"}}', code="bad_extension")
    return out


@dataclass(frozen=True)
class Extension:
    kind: str
    name: str
    config: dict[str, Any]


@dataclass
class ForSandbox:
    """A sandbox's share: OpenCode's ``mcp`` section, the variables it names, the skills, the hosts
    remote servers add to the egress allowlist, and what was left out (and why)."""

    mcp: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    skills: dict[str, str] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def merged(global_ones: list[Extension], repository_ones: list[Extension]) -> list[Extension]:
    """The repository's replace the global ones of the same name."""
    by_name = {e.name: e for e in global_ones}
    by_name.update({e.name: e for e in repository_ones})
    return sorted(by_name.values(), key=lambda e: e.name)


def for_sandbox(extensions: list[Extension], secrets: Mapping[str, str]) -> ForSandbox:
    out = ForSandbox()
    for ext in extensions:
        if ext.kind == "skill":
            out.skills[ext.name] = ext.config["content"]
            continue
        values = ext.config.get("environment" if ext.kind == "mcp_local" else "headers") or {}
        resolved: dict[str, str] = {}
        missing = [v["secret"] for v in values.values() if isinstance(v, dict) and v["secret"] not in secrets]
        if missing:
            out.left_out.append(f"MCP server {ext.name}: no secret {missing[0]}")
            continue
        for key, value in values.items():
            if isinstance(value, dict):
                variable = f"MCP_SECRET_{len(out.env) + 1}"  # not INSPECT_: that prefix is refused as a secret's name
                out.env[variable] = secrets[value["secret"]]
                resolved[key] = f"{{env:{variable}}}"
            else:
                resolved[key] = value
        if ext.kind == "mcp_local":
            out.mcp[ext.name] = {"type": "local", "command": ext.config["command"], "environment": resolved}
        else:
            out.mcp[ext.name] = {"type": "remote", "url": ext.config["url"], "headers": resolved}
            out.hosts.append(urlparse(ext.config["url"]).hostname or "")
    return out
