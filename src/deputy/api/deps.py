"""FastAPI dependencies: the platform and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from deputy.domain.errors import Unauthenticated
from deputy.domain.tenancy import Principal
from deputy.observability.context import note_workspace
from deputy.services.keys import authenticate
from deputy.services.pagination import MAX_LIMIT
from deputy.services.platform import Platform

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer dpy_…`")


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def get_principal(
    platform: Annotated[Platform, Depends(get_platform)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("an API key is required: send `Authorization: Bearer <key>`")
    principal = authenticate(platform, credentials.credentials)
    note_workspace(principal.workspace_id)
    return principal


PlatformDep = Annotated[Platform, Depends(get_platform)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="A spec version number.")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]
