"""The simulated Fitbit Web API's data calls: profile, a day of intraday steps or heart rate,
a day of sleep (v1.2), subscriptions. Paths from ``fitbit_spec``; bodies from ``pages.py``."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime

from aiohttp import web

from connectors.simulator.data_calls import data_call, subscribe
from connectors.simulator.keys import WORLD
from connectors.simulator.pages import fitbit_day, fitbit_sleep
from connectors.simulator.world import Grant, World
from connectors.vendors import fitbit_spec
from models.providers import Provider

__all__ = ["routes"]

_P = Provider.FITBIT
_RESOURCES = "|".join(fitbit_spec.INTRADAY_RESOURCES.values())


def routes() -> list[web.RouteDef]:
    return [
        web.get(fitbit_spec.PROFILE_PATH, data_call(_P, _profile)),
        web.get(fitbit_spec.INTRADAY_PATH.replace("{resource}", f"{{resource:{_RESOURCES}}}"),
                data_call(_P, _intraday)),
        web.get(fitbit_spec.SLEEP_PATH, data_call(_P, _sleep)),
        web.post(fitbit_spec.SUBSCRIPTION_PATH, data_call(_P, subscribe)),
        web.post(fitbit_spec.COLLECTION_SUBSCRIPTION_PATH, data_call(_P, subscribe)),
    ]


async def _profile(request: web.Request, grant: Grant) -> web.StreamResponse:
    account = grant.account
    offset = datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(account.timezone)).utcoffset()
    return web.json_response({"user": {"encodedId": account.user_id, "timezone": account.timezone,
                                       "offsetFromUTCMillis": int(offset.total_seconds() * 1000) if offset else 0}})


def _invalid(message: str) -> web.Response:
    return web.json_response({"errors": [{"errorType": "validation", "message": message}]}, status=400)


async def _intraday(request: web.Request, grant: Grant) -> web.StreamResponse:
    try:
        day = date.fromisoformat(request.match_info["day"])
    except ValueError:
        return _invalid("Invalid date")
    if request.match_info["detail"] not in fitbit_spec.DETAIL_LEVELS:
        return _invalid("Invalid detail-level")
    world: World = request.app[WORLD]
    body = fitbit_day(world, grant.account, request.match_info["resource"], day)
    world.stats["samples_served"] += body.count(b'"time"')
    return web.Response(body=body, content_type="application/json")


async def _sleep(request: web.Request, grant: Grant) -> web.StreamResponse:
    try:
        day = date.fromisoformat(request.match_info["day"])
    except ValueError:
        return _invalid("Invalid date")
    world: World = request.app[WORLD]
    body = fitbit_sleep(world, grant.account, day)
    world.stats["samples_served"] += body.count(b'"level"')
    return web.Response(body=body, content_type="application/json")
