"""The vendor simulator's HTTP face: the Fitbit Web API and the Google Health API on one host.

Same paths, JSON shapes, OAuth endpoints (consent page, PKCE, single-use refresh tokens,
revoke), rate-limit headers and 429s as the real services (docs/vendors.md, Fitbit Web API and
Google Health API). The routes live in one module each: ``oauth_routes`` (both vendors, their
differences in ``dialects``), ``fitbit_routes``, ``google_routes``, ``keyset_routes`` (the
public keyset that verifies the simulated Google notifications) and ``side_door`` (``/_sim/*``:
statistics, revoking a participant, withdrawing samples, an outage); every data call passes
``data_calls`` (token, quota, ``faults``). During an outage (``/_sim/outage``) every vendor path,
OAuth included, answers 503 with an HTML body, as a load balancer in front of a failing service does.

The simulator imports the vendors' spec modules (paths, scopes, header names) but never a
client: it is what the clients are tested against.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from connectors.simulator import fitbit_routes, google_routes, keyset_routes, oauth_routes, side_door
from connectors.simulator.keys import CLIENTS, WORLD
from connectors.simulator.keyset_routes import SIGNING_KEY, SigningKey
from connectors.simulator.world import World
from connectors.vendors.endpoints import Credentials
from models.providers import Provider

__all__ = ["build_simulator_app"]

_OUTAGE_PAGE = "<html><head><title>503 Service Unavailable</title></head><body>Service Unavailable</body></html>"


def build_simulator_app(world: World, clients: dict[Provider, Credentials],
                        signing_key: SigningKey | None = None) -> web.Application:
    """The simulator app serving ``world``; ``clients``: the OAuth client each vendor knows;
    ``signing_key``: the one the webhook delivery signs with (a fresh one when None)."""
    app = web.Application(middlewares=[_outage])
    app[WORLD], app[CLIENTS] = world, clients
    app[SIGNING_KEY] = SigningKey() if signing_key is None else signing_key
    app.add_routes([*oauth_routes.routes(), *fitbit_routes.routes(), *google_routes.routes(),
                    *keyset_routes.routes(), *side_door.routes()])
    return app


@web.middleware
async def _outage(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every vendor path answers 503 while the world is down; the operator's side door still works."""
    world: World = request.app[WORLD]
    if world.faults.down() and not request.path.startswith("/_sim/"):
        world.stats["outage_503"] += 1
        return web.Response(status=503, text=_OUTAGE_PAGE, content_type="text/html", headers={"Retry-After": "30"})
    return await handler(request)
