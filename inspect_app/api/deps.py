"""Typed dependencies for routes: the services and the authenticated user."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request

from inspect_app import services as services_module
from inspect_app.control.data import users
from inspect_app.control.data.auth import SESSION_COOKIE
from inspect_app.control.plane import ControlPlane
from inspect_app.errors import Unauthorized
from inspect_app.models import User
from inspect_app.services import Services

# Dependencies are ``async def`` unless they block: FastAPI runs a plain ``def`` one in a worker thread,
# and each such hop cost a request about 0.7 ms here (three per prompt: services, user, plane).


async def get_services() -> Services:
    return services_module.current()


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_current_user(request: Request, services: ServicesDep) -> User:
    """The caller, from ``Authorization: Bearer <API token>`` (or a signed-in browser's cookie)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return await asyncio.to_thread(users.user_for_token, services.engine, token.strip())
    session = request.cookies.get(SESSION_COOKIE, "")
    if session:  # a signed-in browser
        return await asyncio.to_thread(users.user_for_token, services.engine, session)
    raise Unauthorized("send Authorization: Bearer <API token>")


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_plane(services: ServicesDep) -> ControlPlane:
    return services.plane


PlaneDep = Annotated[ControlPlane, Depends(get_plane)]
