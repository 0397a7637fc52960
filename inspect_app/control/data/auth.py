"""Who may sign in (allowlists), and browser sign-in sessions (opaque tokens, stored hashed).

With GitHub sign-in configured, access is denied unless the person is allowed by login, by
organisation membership, or by a verified email domain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import select

from inspect_app.control import tokens
from inspect_app.control.crypto import Cipher
from inspect_app.control.data import users
from inspect_app.db import session_scope
from inspect_app.errors import Forbidden, Unauthorized
from inspect_app.models import ApiToken, Identity, User, utcnow
from inspect_app.settings import Settings

if TYPE_CHECKING:  # only a type here: the CLI imports this module and must not load Authlib
    from inspect_app.scm.github_oauth import GitHubProfile

SESSION_COOKIE = "inspect_session"
SESSION_TOKEN_NAME = "web-session"  # noqa: S105 - a label, not a secret


def _split(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def check_allowed(settings: Settings, profile: GitHubProfile) -> None:
    """Raise Forbidden (with the reason a person can act on) unless an allowlist admits them."""
    logins, orgs, domains = (
        _split(settings.allowed_users) | settings.admin_logins,  # an admin needs no second listing
        _split(settings.allowed_orgs),
        _split(settings.allowed_email_domains),
    )
    if not (logins or orgs or domains):
        raise Forbidden(
            "sign-in is closed: no INSPECT_ALLOWED_USERS, _ORGS, _EMAIL_DOMAINS or INSPECT_ADMIN_USERS is configured"
        )
    if profile.login.lower() in logins:
        return
    if orgs & {o.lower() for o in profile.orgs}:
        return
    verified = {address.rsplit("@", 1)[-1].lower() for address, _, ok in profile.emails if ok and "@" in address}
    if domains & verified:
        return
    raise Forbidden(f"{profile.login} is not on this instance's allowlist (users, organisations or email domains)")


def sign_in(
    engine: sa.Engine,
    cipher: Cipher,
    profile: GitHubProfile,
    access_token: str,
    *,
    admin_logins: frozenset[str] = frozenset(),
) -> tuple[User, str]:
    """Create or update the user and identity (token encrypted); return the user and a browser session token.

    A login in ``admin_logins`` (INSPECT_ADMIN_USERS) is made an admin; nobody is demoted here (that is
    ``admin revoke``'s job, so a grant from the command survives the next sign-in)."""
    with session_scope(engine) as db:
        identity = db.exec(
            select(Identity).where(Identity.provider == "github", Identity.provider_user_id == str(profile.id))
        ).first()
        if identity is None:
            user = User(
                name=profile.name or profile.login,
                email=profile.email,
                login=profile.login,
                avatar_url=profile.avatar_url,
                commit_email=profile.commit_email,
            )
            db.add(user)
            db.flush()
            identity = Identity(user_id=user.id or 0, provider="github", provider_user_id=str(profile.id))
            db.add(identity)
        else:
            known = db.get(User, identity.user_id)
            assert known is not None
            user = known
            user.name, user.email, user.login = profile.name or profile.login, profile.email, profile.login
            user.avatar_url, user.commit_email = profile.avatar_url, profile.commit_email
        identity.login = profile.login
        if profile.login.lower() in admin_logins:
            user.is_admin = True
        identity.token_ciphertext = cipher.encrypt(access_token, associated=_token_binding(str(profile.id)))
        identity.updated_at = user.last_seen_at = utcnow()
        db.flush()
        db.refresh(user)
    return user, users.issue_api_token(engine, user.id or 0, name=SESSION_TOKEN_NAME)


def _token_binding(github_user_id: str) -> str:
    """What a stored GitHub token is encrypted to: it decrypts only as this GitHub user's."""
    return f"github:{github_user_id}"


def github_token(engine: sa.Engine, cipher: Cipher, user_id: int) -> str | None:
    """The person's GitHub OAuth token, stored at sign-in (None: they never signed in with GitHub)."""
    with session_scope(engine) as db:
        identity = db.exec(select(Identity).where(Identity.user_id == user_id, Identity.provider == "github")).first()
        if identity is None or not identity.token_ciphertext:
            return None
        blob, github_id = identity.token_ciphertext, identity.provider_user_id
    return cipher.decrypt(blob, associated=_token_binding(github_id))


def user_for_session(engine: sa.Engine, token: str) -> User:
    if not token:
        raise Unauthorized("not signed in")
    return users.user_for_token(engine, token)


def sign_out(engine: sa.Engine, token: str) -> None:
    with session_scope(engine) as db:
        row = db.exec(select(ApiToken).where(ApiToken.token_hash == tokens.hash_token(token))).first()
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()
