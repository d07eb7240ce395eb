"""What every data call of either vendor goes through before it is answered: the bearer token,
the scope the call needs (403 in the vendor's shape when the grant lacks it), the vendor's rate
limit (with its headers and 429), and injected faults; and the subscribe answer both vendors
share."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection

from aiohttp import web

from connectors.simulator.dialects import DIALECTS
from connectors.simulator.faults import injected_fault
from connectors.simulator.keys import WORLD, Handler
from connectors.simulator.world import Grant, World
from models.providers import Provider
from runtime.metrics import counter

__all__ = ["Needs", "data_call", "subscribe"]

REQUESTS = counter("simulator_requests_total", "Vendor API requests the simulator answered", ["provider", "status"])
VIOLATIONS = counter("simulator_rate_limit_violations_total", "Requests over a vendor rate limit (answered 429)",
                     ["provider"])

#: The scopes a request may be answered under (any one of them will do); none: no scope needed.
Needs = Callable[[web.Request], Collection[str]]


def _nothing(request: web.Request) -> Collection[str]:
    return ()


def data_call(provider: Provider, inner: Callable[[web.Request, Grant], Awaitable[web.StreamResponse]],
              needs: Needs = _nothing) -> Handler:
    """Authenticate, check the grant's scope, count against the rate limits, inject faults, then answer."""
    dialect = DIALECTS[provider]

    async def handler(request: web.Request) -> web.StreamResponse:
        world: World = request.app[WORLD]
        grant, problem = _authenticate(world, provider, request.headers.get("Authorization", ""))
        if grant is None:
            REQUESTS.labels(provider.value, "401").inc()
            return web.json_response(dialect.unauthorized(problem), status=401)
        missing = _missing_scope(grant, needs(request))
        if missing is not None:
            REQUESTS.labels(provider.value, "403").inc()
            world.stats[f"scope_refusals_{provider.value}"] += 1
            return web.json_response(dialect.insufficient_scope(missing), status=403)
        user = (provider, grant.account.user_id)
        if world.answering[user]:  # another call of the same user is still being answered
            world.stats[f"overlapping_requests_{provider.value}"] += 1
        world.answering[user] += 1
        try:
            return await _answer(world, provider, grant, request, inner)
        finally:
            world.answering[user] -= 1
            if not world.answering[user]:
                del world.answering[user]
    return handler


async def _answer(world: World, provider: Provider, grant: Grant, request: web.Request,
                  inner: Callable[[web.Request, Grant], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """The rate limit (its headers, or a 429), then an injected fault or the answer."""
    dialect = DIALECTS[provider]
    now = time.time()
    allowed, limit, reset, remaining = world.quota.take(provider, grant.account.user_id, now)
    headers = dialect.limit_headers(limit, remaining, reset)
    if not allowed:
        VIOLATIONS.labels(provider.value).inc()
        world.stats[f"violations_{provider.value}"] += 1
        REQUESTS.labels(provider.value, "429").inc()
        headers["Retry-After"] = str(max(1, int(reset + 0.999)))
        return web.json_response(dialect.too_many(), status=429, headers=headers)
    response: web.StreamResponse | None = await injected_fault(world)
    if response is None:
        response = await inner(request, grant)
    response.headers.update(headers)
    REQUESTS.labels(provider.value, str(response.status)).inc()
    world.stats[f"requests_{provider.value}"] += 1
    return response


def _missing_scope(grant: Grant, needed: Collection[str]) -> str | None:
    """The scope to name in a 403 when the grant holds none of ``needed``; None when it may go on."""
    if not needed or not set(grant.scope.split()).isdisjoint(needed):
        return None
    return next(iter(needed))


def _authenticate(world: World, provider: Provider, header: str) -> tuple[Grant | None, str]:
    grant = world.access.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
    if grant is None or grant.account.provider is not provider or grant.account.revoked:
        return None, "invalid_token"
    if grant.expires_at < time.time():
        return None, "expired_token"
    return grant, ""


async def subscribe(request: web.Request, grant: Grant) -> web.StreamResponse:
    """A subscription to the participant's syncs (both vendors): the world notifies it from now on."""
    grant.account.subscribed = True
    return web.json_response({"ownerId": grant.account.user_id, "subscriptionId": "sim"}, status=201)
