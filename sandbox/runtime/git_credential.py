"""A git credential helper for sandboxes: asks the control plane for a short-lived token.

Git runs it as ``<python> git_credential.py get`` (configured through GIT_CONFIG_* variables by the
supervisor, so every git in the sandbox — the runtime's and the agent's — uses it). It posts the
protocol, host and path git asks about to ``$INSPECT_API_URL/api/sandbox/git-credentials`` with the
sandbox's tool token (read from ``$INSPECT_TOOL_TOKEN_FILE`` at each call: a pooled sandbox gets it
only when a session claims it) and prints what comes back. Nothing is stored: ``store`` and ``erase`` do
nothing: the token the control plane hands out lives only in git's memory for one operation.

Standard library only: git runs it as a plain script.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

TIMEOUT_S = 20


def parse(text: str) -> dict[str, str]:
    """Git's ``key=value`` lines (the request ends at an empty line)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            break
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value
    return fields


def tool_token() -> str:
    path = os.environ.get("INSPECT_TOOL_TOKEN_FILE", "")
    try:
        return Path(path).read_text().strip() if path else ""
    except OSError:
        return ""


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "get":
        return 0  # store / erase: nothing is kept
    api, token = os.environ.get("INSPECT_API_URL", ""), tool_token()
    if not api or not token:
        return 0  # git goes on without credentials (and fails if the remote needs them)
    asked = parse(sys.stdin.read())
    request = urllib.request.Request(  # noqa: S310 - INSPECT_API_URL is http(s), set by the provider
        f"{api.rstrip('/')}/api/sandbox/git-credentials",
        data=json.dumps({k: asked.get(k, "") for k in ("protocol", "host", "path")}).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - our own API
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("error", {}).get("message", exc.reason)
        print(f"inspect: no git credentials for {asked.get('host', '?')}: {detail}", file=sys.stderr)
        return 0
    except (OSError, ValueError) as exc:
        print(f"inspect: the control plane did not answer for git credentials: {exc}", file=sys.stderr)
        return 0
    sys.stdout.write(f"username={answer['username']}\npassword={answer['password']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
