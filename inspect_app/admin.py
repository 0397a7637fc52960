"""``python -m inspect_app.admin``: administrative commands for the operator of an instance.

create-user --name N --email E     create a user and print a new personal API token
create-token --email E             print a new API token for an existing user
grant (--email E | --login L)      make a user an admin (secrets, provider keys, settings, repositories)
revoke (--email E | --login L)     make an admin an ordinary user again (prompts and their own tokens)
stop-sandboxes                     end the sandboxes a stopped server left running (they outlive it, to be
                                   adopted by the next one); run it only while no server runs
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlmodel import col, select

from inspect_app.control.data import roles, users
from inspect_app.db import check_connection, session_scope, upgrade
from inspect_app.errors import InspectError
from inspect_app.models import User
from inspect_app.services import build_services
from inspect_app.settings import Settings, load_settings
from sandbox.providers.base import SandboxProvider


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m inspect_app.admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-user", help="create a user and print a new API token")
    create.add_argument("--name", required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--login", default=None, help="GitHub login, if known")
    token = commands.add_parser("create-token", help="print a new API token for an existing user")
    token.add_argument("--email", required=True)
    token.add_argument("--name", default="cli", help="a label for the token")
    for name, verb in (("grant", "make a user an admin"), ("revoke", "take a user's admin role away")):
        role = commands.add_parser(name, help=verb)
        who = role.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--login", help="GitHub login")
    commands.add_parser("stop-sandboxes", help="end the sandboxes a stopped server left running")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        services = build_services(settings)
        check_connection(services.engine)
        upgrade(settings.resolved_database_url)
        if args.command == "stop-sandboxes":
            asyncio.run(_stop_sandboxes(services.plane.lifecycle.provider))
            print("every sandbox left running has ended; the next start reports their sessions' sandboxes lost")
        elif args.command == "create-user":
            user = users.create_user(services.engine, name=args.name, email=args.email, login=args.login)
            print(users.issue_api_token(services.engine, user.id or 0, name="cli"))
        elif args.command in ("grant", "revoke"):
            admin = args.command == "grant"
            user = roles.set_admin(services.engine, admin=admin, email=args.email or "", login=args.login or "")
            print(f"{user.name} <{user.email}> is {'now an admin' if admin else 'no longer an admin'}")
            note = "" if admin else _granted_again(settings, user)
            if note:
                print(f"inspect admin: note: {note}", file=sys.stderr)
        else:
            with session_scope(services.engine) as db:
                holder = db.exec(select(User).where(User.email == args.email).order_by(col(User.id))).first()
            if holder is None:
                raise InspectError(f"no user with email {args.email!r}")
            print(users.issue_api_token(services.engine, holder.id or 0, name=args.name))
    except InspectError as exc:
        print(f"inspect admin: {exc.message}", file=sys.stderr)
        return 2
    return 0


async def _stop_sandboxes(provider: SandboxProvider) -> None:
    """Adopting nothing ends every sandbox the provider finds recorded, and what runs as its uids."""
    try:
        await provider.adopt([])
    finally:
        await provider.close()


def _granted_again(settings: Settings, user: User) -> str:
    """Why a revoked admin would be an admin again (empty: they would not)."""
    if user.login and user.login.lower() in settings.admin_logins:
        return f"{user.login} is in INSPECT_ADMIN_USERS and is made an admin again at their next sign-in"
    if user.is_local and not settings.oauth_enabled:
        return "the local user is made an admin again at the next local-mode start"
    return ""


if __name__ == "__main__":
    sys.exit(main())
