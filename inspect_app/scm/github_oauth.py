"""GitHub OAuth (Authlib): the authorize redirect, the code exchange, and the signed-in profile.

URLs come from settings (INSPECT_GITHUB_WEB_URL / INSPECT_GITHUB_API_URL) so GitHub Enterprise and
loopback fakes work. The only module that talks to GitHub's OAuth endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.requests import Request
from starlette.responses import RedirectResponse

from inspect_app.errors import Unauthorized
from inspect_app.settings import Settings

SCOPES = "read:user user:email read:org"


@dataclass(frozen=True)
class GitHubProfile:
    id: int
    login: str
    name: str
    avatar_url: str
    emails: list[tuple[str, bool, bool]]  # (address, primary, verified)
    orgs: list[str]
    public_email: str = ""  # the address on their public profile, if they show one

    @property
    def email(self) -> str:
        """The primary verified address, else the GitHub noreply address."""
        for address, primary, verified in self.emails:
            if primary and verified:
                return address
        return self.noreply_email

    @property
    def noreply_email(self) -> str:
        return f"{self.id}+{self.login}@users.noreply.github.com"

    @property
    def commit_email(self) -> str:
        """Commits carry the public address, else GitHub's noreply one (a private address stays private)."""
        return self.public_email or self.noreply_email


TIMEOUT_S = 15


class GitHubOAuth:
    def __init__(self, settings: Settings) -> None:
        web = settings.github_web_url.rstrip("/")
        self._api = settings.github_api_url.rstrip("/")
        self._oauth = OAuth()
        self._oauth.register(
            "github",
            client_id=settings.github_client_id,
            client_secret=settings.github_client_secret.get_secret_value(),
            authorize_url=f"{web}/login/oauth/authorize",
            access_token_url=f"{web}/login/oauth/access_token",
            api_base_url=f"{self._api}/",
            client_kwargs={"scope": SCOPES, "timeout": TIMEOUT_S},
        )
        self._callback = f"{settings.resolved_public_url}/api/auth/github/callback"

    @property
    def client(self):
        return self._oauth.create_client("github")

    async def authorize_redirect(self, request: Request) -> RedirectResponse:
        return await self.client.authorize_redirect(request, self._callback)

    async def finish(self, request: Request) -> tuple[GitHubProfile, str]:
        """Exchange the callback's code; return the profile and the user's access token."""
        try:
            token = await self.client.authorize_access_token(request)
            user = (await self.client.get("user", token=token)).json()
            emails = (await self.client.get("user/emails", token=token)).json()
            orgs = (await self.client.get("user/orgs", token=token)).json()
        except (OAuthError, ValueError) as exc:
            raise Unauthorized(f"GitHub sign-in failed: {exc}") from exc
        profile = GitHubProfile(
            id=int(user["id"]),
            login=str(user["login"]),
            name=str(user.get("name") or user["login"]),
            avatar_url=str(user.get("avatar_url") or ""),
            emails=[(e["email"], bool(e.get("primary")), bool(e.get("verified"))) for e in emails if "email" in e],
            orgs=[str(o.get("login")) for o in orgs if isinstance(o, dict)],
            public_email=str(user.get("email") or ""),
        )
        return profile, str(token["access_token"])
