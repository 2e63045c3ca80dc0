"""Who is calling: one dependency turns ``Authorization: Bearer <key>`` into a
:class:`~engine.Principal`.

It is a dependency of the whole app, so a route added later is guarded without saying so; the
only routes it lets through without a key are the paths of :data:`OPEN_PATHS`. Without any key
configured (environment or database) the API is open and every caller is the anonymous admin.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from engine import ANONYMOUS, Actor, Engine, Forbidden, Principal, Unauthorized

#: the dashboard's page shells: they hold no data (their scripts read the API with the key)
UI_PAGES = frozenset(
    {"/ui", "/ui/", "/ui/jobs/{job}", "/ui/submit", "/ui/interfaces", "/ui/schedules"}
)
#: route paths served without a key: health checks, callbacks (their token guards them), and
#: the dashboard's pages
OPEN_PATHS = frozenset({"/healthz", "/callbacks/{token}", "/api/v1/callbacks/{token}"}) | UI_PAGES
#: the caller of an open path: no admin, and no job is its own
UNAUTHENTICATED = Principal(name="anonymous", admin=False, anonymous=True)


def _route_path(request: HTTPConnection) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", request.scope["path"]))


async def authenticate(request: HTTPConnection) -> Principal:
    """The principal of the request (or socket); 401 without a key or with an unknown or
    revoked one."""
    if _route_path(request) in OPEN_PATHS:
        return UNAUTHENTICATED
    engine: Engine = request.app.state.engine
    if not await engine.auth_enabled():
        return ANONYMOUS
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    principal = await engine.authenticate(key.strip())
    if principal is None:
        raise Unauthorized("the API key is unknown or revoked")
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticate)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise Forbidden(f"key {principal.name!r} is not an admin key")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def actor_of(request: HTTPConnection, principal: Principal) -> Actor:
    """Who makes a change, as the audit log records it: the key's name and client address."""
    client = request.client
    return Actor(name=principal.name, address=client.host if client else None)


async def get_actor(request: HTTPConnection, principal: PrincipalDep) -> Actor:
    return actor_of(request, principal)


ActorDep = Annotated[Actor, Depends(get_actor)]
