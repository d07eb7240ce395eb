"""The simulated Fitbit Web API's data calls: profile, a day of intraday steps or heart rate, a
day's activity summary, a day of sleep (v1.2), the account's devices, subscriptions. Paths and
the scope each call needs from ``fitbit_spec``; bodies from ``pages.py`` and ``devices.py``."""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Collection
from datetime import UTC, date, datetime

from aiohttp import web

from connectors.simulator.data_calls import data_call, subscribe
from connectors.simulator.devices import fitbit_devices
from connectors.simulator.keys import WORLD
from connectors.simulator.pages import fitbit_activity_summary, fitbit_day, fitbit_sleep
from connectors.simulator.world import Grant, World
from connectors.vendors import fitbit_spec
from models.providers import Provider

__all__ = ["routes"]

_P = Provider.FITBIT
_RESOURCES = "|".join(fitbit_spec.INTRADAY_RESOURCES.values())
_TYPE_OF_RESOURCE = {resource: data_type for data_type, resource in fitbit_spec.INTRADAY_RESOURCES.items()}


def _scope(data_type: str) -> tuple[str]:
    return (fitbit_spec.SCOPE_OF[data_type],)


def _intraday_scope(request: web.Request) -> Collection[str]:
    return _scope(_TYPE_OF_RESOURCE[request.match_info["resource"]])


def routes() -> list[web.RouteDef]:
    return [
        web.get(fitbit_spec.PROFILE_PATH, data_call(_P, _profile, lambda _: (fitbit_spec.PROFILE_SCOPE,))),
        web.get(fitbit_spec.INTRADAY_PATH.replace("{resource}", f"{{resource:{_RESOURCES}}}"),
                data_call(_P, _intraday, _intraday_scope)),
        web.get(fitbit_spec.ACTIVITY_SUMMARY_PATH,
                data_call(_P, _activity_summary, lambda _: _scope("activities-summary"))),
        web.get(fitbit_spec.SLEEP_PATH, data_call(_P, _sleep, lambda _: _scope("sleep"))),
        web.get(fitbit_spec.DEVICES_PATH, data_call(_P, _devices, lambda _: _scope("devices"))),
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


def _day(request: web.Request) -> date | None:
    try:
        return date.fromisoformat(request.match_info["day"])
    except ValueError:
        return None


async def _intraday(request: web.Request, grant: Grant) -> web.StreamResponse:
    day = _day(request)
    if day is None:
        return _invalid("Invalid date")
    if request.match_info["detail"] not in fitbit_spec.DETAIL_LEVELS:
        return _invalid("Invalid detail-level")
    world: World = request.app[WORLD]
    body = fitbit_day(world, grant.account, request.match_info["resource"], day)
    world.stats["samples_served"] += body.count(b'"time"')
    return web.Response(body=body, content_type="application/json")


async def _activity_summary(request: web.Request, grant: Grant) -> web.StreamResponse:
    day = _day(request)
    if day is None:
        return _invalid("Invalid date")
    world: World = request.app[WORLD]
    world.stats["summaries_served"] += 1
    return web.Response(body=fitbit_activity_summary(world, grant.account, day), content_type="application/json")


async def _sleep(request: web.Request, grant: Grant) -> web.StreamResponse:
    day = _day(request)
    if day is None:
        return _invalid("Invalid date")
    world: World = request.app[WORLD]
    body = fitbit_sleep(world, grant.account, day)
    world.stats["samples_served"] += body.count(b'"level"')
    return web.Response(body=body, content_type="application/json")


async def _devices(request: web.Request, grant: Grant) -> web.StreamResponse:
    world: World = request.app[WORLD]
    body = fitbit_devices(world, grant.account, time.time())
    world.stats["devices_served"] += body.count(b'"deviceVersion"')
    return web.Response(body=body, content_type="application/json")
