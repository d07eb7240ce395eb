"""The simulator operator's side door, ``/_sim/*``: statistics (the demo and the benchmark read
them), revoking a participant's grant as if they had done it at the vendor, and withdrawing or
restoring samples as if the participant had deleted them (``/_sim/delete``, ``/_sim/restore``;
Google Health announces both with a notification), and an outage of the whole vendor
(``/_sim/outage``: every vendor endpoint answers 503 for the seconds given, no device syncs)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from connectors.simulator.keys import WORLD
from connectors.simulator.world import Account, World
from models.providers import Provider

__all__ = ["routes"]


def routes() -> list[web.RouteDef]:
    return [web.get("/_sim/stats", _stats), web.post("/_sim/revoke", _revoke),
            web.post("/_sim/delete", _delete), web.post("/_sim/restore", _restore),
            web.post("/_sim/outage", _outage)]


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


async def _outage(request: web.Request) -> web.StreamResponse:
    """``{"seconds": N}``: the vendor is down for the next N seconds (0 ends an outage now)."""
    body = await request.json()
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds <= 86_400:
        return web.json_response({"error": "seconds: a number from 0 to 86400"}, status=400)
    world: World = request.app[WORLD]
    world.faults.down_until = time.monotonic() + seconds
    world.stats["outages"] += 1 if seconds else 0
    return web.json_response({"down_for": seconds})


async def _delete(request: web.Request) -> web.StreamResponse:
    """``{participant_id, data_type, start, end}`` (epoch seconds; ``provider`` defaults to
    google_health): the samples in [start, end) are withdrawn."""
    found = await _interval(request)
    if isinstance(found, web.Response):
        return found
    account, data_type, start, end = found
    request.app[WORLD].delete_samples(account, data_type, start, end)
    return web.json_response({"deleted": True})


async def _restore(request: web.Request) -> web.StreamResponse:
    """The same body as ``/_sim/delete``: a withdrawn interval is there again (404 if none was)."""
    found = await _interval(request)
    if isinstance(found, web.Response):
        return found
    restored = request.app[WORLD].restore_samples(*found)
    return web.json_response({"restored": restored}, status=200 if restored else 404)


async def _interval(request: web.Request) -> tuple[Account, str, float, float] | web.Response:
    """The account and interval a delete/restore body names, or the 4xx answer saying why not."""
    try:
        body: Any = await request.json()
        provider = Provider(body.get("provider", Provider.GOOGLE_HEALTH.value))
        participant, data_type = str(body["participant_id"]), str(body["data_type"])
        start, end = float(body["start"]), float(body["end"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return web.json_response({"error": "expected {participant_id, data_type, start, end}"}, status=400)
    if not start < end:
        return web.json_response({"error": "end must be after start"}, status=400)
    account = request.app[WORLD].find_account(provider, participant)
    if account is None:
        return web.json_response({"error": "no such account"}, status=404)
    return account, data_type, start, end
