"""``/api/auth``: GitHub sign-in and sign-out for browsers (an HttpOnly session cookie)."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from inspect_app.api.deps import ServicesDep
from inspect_app.control import auth
from inspect_app.errors import Forbidden, NotFound, Unauthorized
from inspect_app.scm.github_oauth import GitHubOAuth
from inspect_app.settings import Settings

router = APIRouter(prefix="/api/auth", tags=["auth"])
COOKIE_MAX_AGE = 30 * 24 * 3600


def _oauth(services: ServicesDep) -> GitHubOAuth:
    if services.github_oauth is None:
        raise NotFound("GitHub sign-in is not configured on this instance")
    return services.github_oauth


def framed_over_https(settings: Settings) -> bool:
    return bool(settings.extension_origin_list) and settings.resolved_public_url.startswith("https://")


@router.get("/github/login")
async def github_login(request: Request, services: ServicesDep) -> RedirectResponse:
    return await _oauth(services).authorize_redirect(request)


@router.get("/github/callback")
async def github_callback(request: Request, services: ServicesDep) -> RedirectResponse:
    try:
        profile, access_token = await _oauth(services).finish(request)
        auth.check_allowed(services.settings, profile)
    except (Forbidden, Unauthorized) as exc:
        return RedirectResponse(f"/denied?reason={quote(exc.message)}", status_code=303)
    _user, session_token = await asyncio.to_thread(
        auth.sign_in,
        services.engine,
        services.cipher,
        profile,
        access_token,
        admin_logins=services.settings.admin_logins,
    )
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        auth.SESSION_COOKIE,
        session_token,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        # The extension's side panel frames the app from another site: a cookie it can send there
        # must be SameSite=None, which browsers accept only with Secure (https).
        samesite="none" if framed_over_https(services.settings) else "lax",
        secure=services.settings.resolved_public_url.startswith("https://"),
    )
    return response


@router.post("/logout")
@router.get("/logout")
async def logout(request: Request, services: ServicesDep) -> RedirectResponse:
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    if token:
        await asyncio.to_thread(auth.sign_out, services.engine, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response
