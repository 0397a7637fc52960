"""Browser sign-in and sign-out: GitHub, the one-time link, a pasted API token (one HttpOnly cookie).

``/login`` and ``/denied`` are plain HTML served here, not Reflex pages: they must work before
the browser has the session cookie the Reflex socket requires.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from inspect_app.api.deps import ServicesDep
from inspect_app.control.data import auth, browser_sign_in
from inspect_app.errors import Forbidden, NotFound, Unauthorized
from inspect_app.scm.github_oauth import GitHubOAuth
from inspect_app.settings import Settings
from inspect_app.ui.pages.login import denied_page, login_page

router = APIRouter(prefix="/api/auth", tags=["auth"])
pages = APIRouter(include_in_schema=False)
COOKIE_MAX_AGE = 30 * 24 * 3600


def _oauth(services: ServicesDep) -> GitHubOAuth:
    if services.github_oauth is None:
        raise NotFound("GitHub sign-in is not configured on this instance")
    return services.github_oauth


def framed_cookie(settings: Settings) -> bool:
    """Whether the session cookie is ``SameSite=None; Secure``: the extension's side panel frames the
    app from another site, and Chrome sends a Lax cookie with the framed page itself but not with
    that page's socket (seen in the extension's browser test). Browsers accept a Secure cookie
    from https, and from loopback http (a secure context); elsewhere it stays Lax."""
    url = settings.resolved_public_url
    secure_context = url.startswith("https://") or urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
    return bool(settings.extension_origin_list) and secure_context


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
    return signed_in(services.settings, session_token)


def signed_in(settings: Settings, session_token: str) -> RedirectResponse:
    """To the home page, holding the web session in the one cookie both sign-in modes use."""
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, session_token, max_age=COOKIE_MAX_AGE, **cookie_attributes(settings))
    return response


def cookie_attributes(settings: Settings) -> dict[str, Any]:
    """The session cookie's attributes (a browser deletes it only when they match)."""
    return {
        "httponly": True,  # no script on the page can read it
        # cross-site only for the extension's frame; the session guard checks Origin either way
        "samesite": "none" if framed_cookie(settings) else "lax",
        "secure": framed_cookie(settings) or settings.resolved_public_url.startswith("https://"),
    }


@router.post("/logout")  # not GET: a link on another site must not sign the person out
async def logout(request: Request, services: ServicesDep) -> RedirectResponse:
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    if token:
        await asyncio.to_thread(auth.sign_out, services.engine, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, **cookie_attributes(services.settings))
    return response


@router.post("/session")
async def sign_in_with_token(request: Request, services: ServicesDep) -> RedirectResponse:
    """The /login form: a personal API token in, a web session cookie out (the token is not kept)."""
    form = await request.form()
    try:
        _user, session_token = await asyncio.to_thread(
            browser_sign_in.session_for_api_token, services.engine, str(form.get("token", ""))
        )
    except Unauthorized:
        return RedirectResponse("/login?error=token", status_code=303)
    await _end_previous(request, services)
    return signed_in(services.settings, session_token)


async def _end_previous(request: Request, services: ServicesDep) -> None:
    """Signing in again (as someone else) ends the session the browser held."""
    if previous := request.cookies.get(auth.SESSION_COOKIE, ""):
        await asyncio.to_thread(auth.sign_out, services.engine, previous)


@pages.get("/login", response_model=None)
async def login(
    request: Request, services: ServicesDep, token: str = "", error: str = ""
) -> HTMLResponse | RedirectResponse:
    """The sign-in page; with ``?token=`` (the one-time link ``make run`` printed) it signs in at once."""
    if token:
        try:
            session_token = await asyncio.to_thread(
                browser_sign_in.redeem_login_link, services.engine, services.settings.data_dir, token
            )
        except Unauthorized:
            return RedirectResponse("/login?error=link", status_code=303)
        await _end_previous(request, services)
        return signed_in(services.settings, session_token)
    settings = services.settings
    html = login_page(github=settings.oauth_enabled, local_mode=not settings.oauth_enabled, error=error)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@pages.get("/denied")
async def denied(reason: str = "") -> HTMLResponse:
    return HTMLResponse(denied_page(reason), headers={"Cache-Control": "no-store"})
