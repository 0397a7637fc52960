"""``python -m inspect_app.cli`` (``.venv/bin/inspect-cli``): Inspect from a terminal.

    inspect-cli login --url http://127.0.0.1:3000 --token ins_…
    inspect-cli repos
    inspect-cli run --repo acme/widgets "Fix the flaky login test"
    inspect-cli sessions
    inspect-cli attach <session id>
    inspect-cli send <session id> "And add a test for it"
    inspect-cli stop <session id>

``run`` and ``send`` stream the prompt, tool calls and the answer, and exit 0 when the prompt
succeeded, 1 when it failed; 2 is a wrong command line or no login, 3 an error from or reaching the
server, 130 an interrupt. Rich output on a terminal, plain text when piped, ``--json`` one event
(a change-feed row) per line.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from inspect_app.cli import config
from inspect_app.cli.client import Api, CliError
from inspect_app.cli.render import Line, Transcript

POLL_S = 0.5
OK, FAILED, USAGE, SERVER, INTERRUPTED = 0, 1, 2, 3, 130


class Out:
    """Where lines go: styled on a terminal, plain when piped, JSON rows with ``--json``."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self._console = Console(highlight=False, soft_wrap=True) if sys.stdout.isatty() else None

    def line(self, line: Line) -> None:
        if self._console is not None:
            self._console.print(line.text, style=line.style or None, end=line.end, markup=False)
        else:
            sys.stdout.write(line.text + line.end)
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """Said to the person (stderr under ``--json``, which keeps stdout to events)."""
        if self.as_json:
            print(text, file=sys.stderr)
        else:
            self.line(Line(text, "dim"))

    def event(self, event: dict[str, Any]) -> None:
        print(json.dumps(event), flush=True)


def stream(api: Api, out: Out, session_id: str, cursor: int, *, until: str | None, timeout_s: float) -> int:
    """Show the session's rows as they change; with ``until`` (a prompt id), stop when it has ended
    and say how: OK or FAILED."""
    transcript = Transcript()
    deadline = time.monotonic() + timeout_s
    for event in api.follow(session_id, cursor, pause=lambda: time.sleep(POLL_S)):
        if out.as_json:
            out.event(event)
        else:
            for line in transcript.lines(event):
                out.line(line)
        if until is not None and event.get("type") == "execution_complete" and event.get("message_id") == until:
            if transcript.open_answer is not None and not out.as_json:
                out.line(Line(""))
            return OK if (event.get("data") or {}).get("success") else FAILED
        if time.monotonic() > deadline:
            raise CliError(f"the prompt did not end within {timeout_s:.0f} s (it goes on; `attach` follows it)")
    return OK


# --- commands -------------------------------------------------------------------------------------
def cmd_login(args: argparse.Namespace, _api: Api | None, out: Out) -> int:
    token = args.token or os.environ.get("INSPECT_TOKEN") or getpass.getpass("API token: ")
    api = Api(args.url, token)
    try:
        me = api.me()
    finally:
        api.close()
    config.save(args.config, config.Login(url=args.url.rstrip("/"), token=token))
    out.note(f"Signed in to {args.url} as {me['name']} (saved in {args.config}).")
    return OK


def cmd_repos(_args: argparse.Namespace, api: Api, out: Out) -> int:
    for repo in api.repositories():
        if out.as_json:
            out.event(repo)
        else:
            out.line(Line(f"{repo['id']:>4}  {repo['name']}  ({repo['default_branch']})"))
    return OK


def cmd_sessions(args: argparse.Namespace, api: Api, out: Out) -> int:
    for session in api.sessions(mine=args.mine):
        if out.as_json:
            out.event(session)
        else:
            out.line(Line(f"{session['id']}  {session['status']:<9} {session['repository']:<24} {session['title']}"))
    return OK


def cmd_run(args: argparse.Namespace, api: Api, out: Out) -> int:
    repo = api.repository(args.repo)
    session = api.create_session(repo["id"], model=args.model, branch=args.branch)
    link = api.web_link(session["id"])
    if out.as_json:
        out.event({"type": "session", "id": session["id"], "url": link})
    else:
        out.note(f"Session {session['id']}: {link}")
    message_id = api.prompt(session["id"], args.prompt)
    return stream(api, out, session["id"], 0, until=message_id, timeout_s=args.timeout)


def cmd_send(args: argparse.Namespace, api: Api, out: Out) -> int:
    cursor = int(api.session(args.id).get("cursor") or 0)  # from now on: not the whole history again
    message_id = api.prompt(args.id, args.prompt)
    return stream(api, out, args.id, cursor, until=message_id, timeout_s=args.timeout)


def cmd_attach(args: argparse.Namespace, api: Api, out: Out) -> int:
    out.note(f"Following {api.web_link(args.id)} (Ctrl-C to leave)")
    return stream(api, out, args.id, 0, until=None, timeout_s=float("inf"))


def cmd_stop(args: argparse.Namespace, api: Api, out: Out) -> int:
    api.stop(args.id)
    out.note(f"Stopping what runs in {args.id}.")
    return OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="inspect-cli", description="Inspect from a terminal.")
    top.add_argument("--config", type=Path, default=config.default_path(), help="where the login is kept")
    top.add_argument("--json", action="store_true", help="one JSON event per line")
    commands = top.add_subparsers(dest="command", required=True)
    login = commands.add_parser("login", help="save the server's URL and your API token")
    login.add_argument("--url", required=True)
    login.add_argument("--token", help="your API token (else $INSPECT_TOKEN, else asked)")
    login.set_defaults(run=cmd_login)
    commands.add_parser("repos", help="the registered repositories").set_defaults(run=cmd_repos)
    listing = commands.add_parser("sessions", help="recent sessions")
    listing.add_argument("--mine", action="store_true")
    listing.set_defaults(run=cmd_sessions)
    run = commands.add_parser("run", help="start a session with a prompt and follow it")
    run.add_argument("--repo", required=True, help="the repository's name (or id)")
    run.add_argument("--model", help="provider/model (default: the instance's)")
    run.add_argument("--branch", help="the branch to start from")
    run.add_argument("prompt")
    run.set_defaults(run=cmd_run)
    attach = commands.add_parser("attach", help="follow a session")
    attach.add_argument("id")
    attach.set_defaults(run=cmd_attach)
    send = commands.add_parser("send", help="send a prompt to a session and follow it")
    send.add_argument("id")
    send.add_argument("prompt")
    send.set_defaults(run=cmd_send)
    stop = commands.add_parser("stop", help="stop what runs in a session")
    stop.add_argument("id")
    stop.set_defaults(run=cmd_stop)
    for command in (run, send):
        command.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the prompt")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = Out(as_json=args.json)
    handler: Callable[[argparse.Namespace, Any, Out], int] = args.run
    api: Api | None = None
    try:
        if args.command != "login":
            login = config.load(args.config)
            if login is None:
                print(f"not signed in: run `inspect-cli login --url … --token …` ({args.config})", file=sys.stderr)
                return USAGE
            api = Api(login.url, login.token)
        return handler(args, api, out)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return SERVER
    except KeyboardInterrupt:
        return INTERRUPTED
    finally:
        if api is not None:
            api.close()


if __name__ == "__main__":
    sys.exit(main())
