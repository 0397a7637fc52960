"""``GET /api/me``: who the bearer token belongs to."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from inspect_app.api.deps import CurrentUser

router = APIRouter()


class UserPublic(BaseModel):
    id: int
    name: str
    email: str
    login: str | None
    is_admin: bool  # manages secrets, provider keys, instance settings and repositories


@router.get("/me", response_model=UserPublic)
async def me(user: CurrentUser) -> UserPublic:
    return UserPublic(id=user.id or 0, name=user.name, email=user.email, login=user.login, is_admin=user.is_admin)
