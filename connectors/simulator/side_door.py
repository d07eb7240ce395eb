"""The simulator operator's side door, ``/_sim/*``: statistics (the demo and the benchmark read
them) and revoking a participant's grant as if they had done it at the vendor."""

from __future__ import annotations

from aiohttp import web

from connectors.simulator.keys import WORLD
from connectors.simulator.world import Account, World
from models.providers import Provider

__all__ = ["routes"]


def routes() -> list[web.RouteDef]:
    return [web.get("/_sim/stats", _stats), web.post("/_sim/revoke", _revoke)]


async def _stats(request: web.Request) -> web.StreamResponse:
    world: World = request.app[WORLD]
    stats = dict(world.stats)
    stats["rate_limit_violations"] = sum(v for k, v in world.stats.items() if k.startswith("violations_"))
    stats["accounts"] = len(world.accounts())
    stats["fully_synced"] = world.fully_synced()
    return web.json_response(stats)


async def _revoke(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    world: World = request.app[WORLD]
    account: Account = world.account(Provider(body["provider"]), str(body["participant"]))
    world.revoke(account)
    world.stats["revocations"] += 1
    return web.json_response({"revoked": True})
